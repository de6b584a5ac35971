/* Shared helpers for cmocka unit tests. */
#ifndef MACHINE_TEST_HELPERS_H
#define MACHINE_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "fsutil.h"

/* A fresh temporary directory; removed by test_tmpdir_remove. */
static inline char *test_tmpdir(void)
{
    char tmpl[] = "/tmp/machine-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static inline void test_tmpdir_remove(char *dir)
{
    struct merr err = MERR_INIT;
    assert_int_equal(fs_remove_tree(dir, &err), 0);
    free(dir);
}

#ifdef MACHINE_TEST_DIR
/* Compares actual with tests/unit/golden/NAME; MACHINE_UPDATE_GOLDEN=1 rewrites the file. */
static inline void test_assert_golden(const char *name, const char *actual)
{
    auto_free char *path = xasprintf("%s/unit/golden/%s", MACHINE_TEST_DIR, name);
    auto_free char *want = NULL;
    size_t len = 0;
    struct merr err = MERR_INIT;
    if (getenv("MACHINE_UPDATE_GOLDEN") != NULL) {
        assert_int_equal(fs_write_atomic(path, actual, strlen(actual), 0644, &err), 0);
        return;
    }
    assert_int_equal(fs_read_file(path, 1 << 20, &want, &len, &err), 0);
    assert_string_equal(actual, want);
}
#endif

#endif
