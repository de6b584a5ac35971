/* machine-monitor's state file, socket frames and json-file records (pure). */
#include "monproto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

int mon_state_format(const struct mon_state *st, char *buf, size_t size)
{
    char boot[64] = "";
    if (st->boot_id[0] != '\0')
        snprintf(boot, sizeof boot, "boot_id=%s\n", st->boot_id);
    int n;
    if (st->status == MON_EXITED)
        n = snprintf(buf, size,
                     "version=1\nmonitor_pid=%d\npid=%d\n%sstatus=exited\nexit_code=%d\n"
                     "finished_ns=%" PRId64 "\n",
                     (int)st->monitor_pid, (int)st->pid, boot, st->exit_code, st->finished_ns);
    else
        n = snprintf(buf, size, "version=1\nmonitor_pid=%d\npid=%d\n%sstatus=running\n",
                     (int)st->monitor_pid, (int)st->pid, boot);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

static bool parse_ll(const char *v, size_t len, long long min, long long max, long long *out)
{
    char tmp[32];
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    char *end = NULL;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || x < min || x > max)
        return false;
    *out = x;
    return true;
}

/* One "key=value" line into st; which keys were seen goes into *seen. */
static int state_line(const char *line, size_t len, struct mon_state *st, unsigned *seen,
                      struct merr *err)
{
    const char *eq = memchr(line, '=', len);
    if (eq == NULL)
        return merr_set(err, MERR_CORRUPT, 0, "monitor state: line without '='");
    size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
    const char *v = eq + 1;
    long long x = 0;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
    if (KEY("version")) {
        if (!parse_ll(v, vlen, 1, 1, &x))
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: unknown version");
        *seen |= 1;
    } else if (KEY("monitor_pid") || KEY("pid")) {
        if (!parse_ll(v, vlen, 1, INT32_MAX, &x))
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: bad %.*s", (int)klen, line);
        if (KEY("pid")) {
            st->pid = (pid_t)x;
            *seen |= 2;
        } else {
            st->monitor_pid = (pid_t)x;
        }
    } else if (KEY("status")) {
        if (vlen == 7 && memcmp(v, "running", 7) == 0)
            st->status = MON_RUNNING;
        else if (vlen == 6 && memcmp(v, "exited", 6) == 0)
            st->status = MON_EXITED;
        else
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: bad status");
        *seen |= 4;
    } else if (KEY("boot_id")) {
        if (vlen == 0 || vlen >= sizeof st->boot_id)
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: bad boot_id");
        memcpy(st->boot_id, v, vlen);
        st->boot_id[vlen] = '\0';
    } else if (KEY("exit_code")) {
        if (!parse_ll(v, vlen, -1, 255 + 128, &x))
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: bad exit_code");
        st->exit_code = (int)x;
        *seen |= 8;
    } else if (KEY("finished_ns")) {
        if (!parse_ll(v, vlen, 0, INT64_MAX, &x))
            return merr_set(err, MERR_CORRUPT, 0, "monitor state: bad finished_ns");
        st->finished_ns = x;
        *seen |= 16;
    }
#undef KEY
    return 0;
}

int mon_state_parse(const char *text, size_t len, struct mon_state *out, struct merr *err)
{
    struct mon_state st = { 0 };
    unsigned seen = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
        if (n > 0 && state_line(text + at, n, &st, &seen, err) < 0)
            return -1;
        at += n + 1;
    }
    if ((seen & 7) != 7)
        return merr_set(err, MERR_CORRUPT, 0, "monitor state: version, pid or status missing");
    if (st.status == MON_EXITED && (seen & 24) != 24)
        return merr_set(err, MERR_CORRUPT, 0, "monitor state: exited without its exit code");
    *out = st;
    return 0;
}

void mon_frame_pack(const struct mon_frame *f, unsigned char hdr[MON_FRAME_HDR])
{
    memset(hdr, 0, MON_FRAME_HDR);
    hdr[0] = (unsigned char)f->type;
    hdr[1] = (unsigned char)f->stream;
    for (int i = 0; i < 4; i++)
        hdr[4 + i] = (unsigned char)(f->len >> (24 - 8 * i));
    uint64_t ns = (uint64_t)f->ns;
    for (int i = 0; i < 8; i++)
        hdr[8 + i] = (unsigned char)(ns >> (56 - 8 * i));
}

int mon_frame_unpack(const unsigned char hdr[MON_FRAME_HDR], struct mon_frame *out,
                     struct merr *err)
{
    if (hdr[0] < MON_FRAME_OUTPUT || hdr[0] > MON_FRAME_RESIZE || hdr[2] != 0 || hdr[3] != 0)
        return merr_set(err, MERR_PROTOCOL, 0, "monitor: bad frame header");
    uint32_t len = 0;
    for (int i = 0; i < 4; i++)
        len = (len << 8) | hdr[4 + i];
    if (len > MON_FRAME_MAX)
        return merr_set(err, MERR_PROTOCOL, 0, "monitor: frame of %u bytes", (unsigned)len);
    uint64_t ns = 0;
    for (int i = 0; i < 8; i++)
        ns = (ns << 8) | hdr[8 + i];
    *out = (struct mon_frame){ .type = (enum mon_frame_type)hdr[0], .stream = hdr[1], .len = len,
                               .ns = (int64_t)ns };
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t want;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        want = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        want = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        want = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < want)
        return 0;
    for (size_t i = 1; i < want; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[want] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return want;
}

/* Go's RFC3339Nano: trailing zeros of the fraction trimmed, none at all for a whole second. */
static int format_time(int64_t unix_ns, char *out, size_t size)
{
    time_t secs = (time_t)(unix_ns / 1000000000);
    long nanos = (long)(unix_ns % 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[64];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanos == 0)
        return snprintf(out, size, "%sZ", base);
    char frac[16];
    snprintf(frac, sizeof frac, "%09ld", nanos);
    for (int i = 8; i > 0 && frac[i] == '0'; i--)
        frac[i] = '\0';
    return snprintf(out, size, "%s.%sZ", base, frac);
}

long mon_logline_format(int stream, const char *data, size_t len, int64_t unix_ns, char *buf,
                        size_t size)
{
    if (size < MON_LOGLINE_MAX(len))
        return -1;
    const unsigned char *s = (const unsigned char *)data;
    char *o = buf;
    o += sprintf(o, "{\"log\":\"");
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        size_t u = utf8_len(s + i, len - i);
        if (u == 0) {
            o += sprintf(o, "\\ufffd");
            i++;
            continue;
        }
        if (u > 1) {
            memcpy(o, s + i, u);
            o += u;
            i += u;
            continue;
        }
        /* Go's encoder: \n \r \t by name, other controls and <, >, & as \u00XX */
        if (ch == '"' || ch == '\\')
            o += sprintf(o, "\\%c", ch);
        else if (ch == '\n')
            o += sprintf(o, "\\n");
        else if (ch == '\r')
            o += sprintf(o, "\\r");
        else if (ch == '\t')
            o += sprintf(o, "\\t");
        else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&')
            o += sprintf(o, "\\u%04x", ch);
        else
            *o++ = (char)ch;
        i++;
    }
    char ts[96];
    format_time(unix_ns, ts, sizeof ts);
    o += sprintf(o, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream == 2 ? "stderr" : "stdout",
                 ts);
    return (long)(o - buf);
}

enum mon_recovery mon_recovery_decide(const struct mon_state *st, bool monitor_answers,
                                      const char *boot_id)
{
    if (st == NULL)
        return MON_RECOVER_LEGACY;
    if (st->status == MON_EXITED)
        return MON_RECOVER_EXITED;
    if (monitor_answers)
        return MON_RECOVER_ADOPT;
    /* a monitor of another boot did not die: the host went down under it */
    if (boot_id != NULL && boot_id[0] != '\0' && st->boot_id[0] != '\0' &&
        strcmp(boot_id, st->boot_id) != 0)
        return MON_RECOVER_REBOOTED;
    return MON_RECOVER_LOST;
}

int mon_boot_id_parse(const char *text, size_t len, char out[40])
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    if (len == 0 || len >= 40)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f') ||
              text[i] == '-'))
            return -1;
    memcpy(out, text, len);
    out[len] = '\0';
    return 0;
}

bool mon_read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}
