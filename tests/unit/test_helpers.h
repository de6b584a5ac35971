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

#endif
