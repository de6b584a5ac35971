/* The progress bar pull and push print, as the docker CLI shows dockerd's. */
#include <stdio.h>

#include "image/internal.h"

static void human_size(uint64_t n, char *buf, size_t cap)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, cap, "%.4g%s", v, units[u]);
}

void image_progress_text(uint64_t cur, uint64_t total, char *out, size_t cap)
{
    char bar[52], a[32], b[32];
    size_t filled = total > 0 ? (size_t)(cur * 50 / total) : 0;
    if (filled > 50)
        filled = 50;
    for (size_t i = 0; i < 50; i++)
        bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
    bar[50] = '\0';
    human_size(cur, a, sizeof a);
    human_size(total, b, sizeof b);
    snprintf(out, cap, "[%s]  %s/%s", bar, a, b);
}
