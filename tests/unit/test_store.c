/* The store: round trip, corrupt config.json, atomic creation, concurrent creates, removal. */
#include "test_helpers.h"

#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "machine.h"
#include "store.h"

static void test_open_creates_private_dirs(void **state)
{
    char *root = test_tmpdir();
    auto_free char *path = path_join(root, "nested/store");
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(path, &s, &err), 0);
    struct stat st;
    assert_int_equal(stat(s.certs_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(s.machines_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_round_trip_and_list(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    const char *names[] = { "zeta", "alpha", "mid" };
    for (size_t i = 0; i < 3; i++) {
        auto_machine struct machine *m = machine_new(names[i], "none");
        machine_driver_set_str(m, "URL", "tcp://127.0.0.1:2376");
        assert_int_equal(store_create_machine(&s, m, &err), 0);
    }
    auto_strv char **list = store_list_names(&s, &err);
    assert_non_null(list);
    assert_int_equal(strv_len(list), 3);
    assert_string_equal(list[0], "alpha");
    assert_string_equal(list[2], "zeta");

    auto_machine struct machine *m = store_load_machine(&s, "mid", &err);
    assert_non_null(m);
    assert_string_equal(machine_driver_str(m, "URL"), "tcp://127.0.0.1:2376");
    machine_set_status(m, MACHINE_STATUS_CREATED, NULL);
    assert_int_equal(store_save_machine(&s, m, &err), 0);
    auto_machine struct machine *again = store_load_machine(&s, "mid", &err);
    assert_string_equal(again->status, MACHINE_STATUS_CREATED);

    auto_free char *cfg = store_machine_file(&s, "mid", "config.json");
    struct stat st;
    assert_int_equal(stat(cfg, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* No temp files are left next to the config. */
    auto_free char *dir = store_machine_dir(&s, "mid");
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        assert_null(strstr(de->d_name, ".tmp"));
    closedir(d);
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_missing_and_corrupt(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    assert_null(store_load_machine(&s, "ghost", &err));
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_null(store_load_machine(&s, "../etc", &err));
    assert_int_equal(err.code, MERR_INVALID);

    auto_machine struct machine *m = machine_new("broken", "none");
    assert_int_equal(store_create_machine(&s, m, &err), 0);
    auto_free char *cfg = store_machine_file(&s, "broken", "config.json");
    assert_int_equal(fs_write_atomic(cfg, "{\"ConfigVersion\": 1, \"Na", 24, 0600, &err), 0);
    assert_null(store_load_machine(&s, "broken", &err));
    assert_int_equal(err.code, MERR_CORRUPT);
    /* The corrupt file is still there, untouched, for the user to inspect. */
    auto_free char *text = NULL;
    assert_int_equal(fs_read_file(cfg, 1024, &text, NULL, &err), 0);
    assert_string_equal(text, "{\"ConfigVersion\": 1, \"Na");

    /* A directory without config.json is also reported as corrupt, not missing. */
    auto_free char *empty = store_machine_dir(&s, "empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_null(store_load_machine(&s, "empty", &err));
    assert_int_equal(err.code, MERR_CORRUPT);

    int lock = store_lock_machine(&s, "broken", 1000, &err);
    assert_true(lock >= 0);
    auto_free char *lock_path = xasprintf("%s/.lock-broken", s.machines_dir);
    assert_true(fs_exists(lock_path));
    assert_int_equal(store_remove_machine(&s, "broken", &err), 0);
    close(lock);
    assert_false(fs_exists(cfg));
    assert_false(fs_exists(lock_path)); /* nothing of the machine is left */
    assert_int_equal(store_remove_machine(&s, "broken", &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_duplicate_create(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    auto_machine struct machine *m = machine_new("dup", "none");
    assert_int_equal(store_create_machine(&s, m, &err), 0);
    machine_driver_set_str(m, "URL", "tcp://changed:1");
    assert_int_equal(store_create_machine(&s, m, &err), -1);
    assert_int_equal(err.code, MERR_EXISTS);
    /* The first machine's config is not overwritten by the losing create. */
    auto_machine struct machine *back = store_load_machine(&s, "dup", &err);
    assert_null(machine_driver_str(back, "URL"));
    store_release(&s);
    test_tmpdir_remove(root);
}

/* N processes create the same name at once: exactly one wins, the others get MERR_EXISTS. */
static void test_concurrent_create(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    enum { N = 12 };
    pid_t pids[N];
    int go[2];
    assert_int_equal(pipe(go), 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) < 0)
                _exit(9);
            struct machine *m = machine_new("race", "none");
            char url[64];
            snprintf(url, sizeof url, "tcp://10.0.0.%d:2376", i);
            machine_driver_set_str(m, "URL", url);
            struct merr e = MERR_INIT;
            int rc = store_create_machine(&s, m, &e);
            machine_free(m);
            _exit(rc == 0 ? 0 : e.code == MERR_EXISTS ? 1 : 2);
        }
    }
    close(go[0]);
    close(go[1]); /* releases every child at once */
    int winners = 0, losers = 0;
    for (int i = 0; i < N; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0)
            winners++;
        else if (WEXITSTATUS(st) == 1)
            losers++;
    }
    assert_int_equal(winners, 1);
    assert_int_equal(losers, N - 1);
    auto_machine struct machine *m = store_load_machine(&s, "race", &err);
    assert_non_null(m);
    auto_strv char **list = store_list_names(&s, &err);
    assert_int_equal(strv_len(list), 1); /* no leftover temp directories listed */
    store_release(&s);
    test_tmpdir_remove(root);
}

/* kill -9 in the middle of saves never leaves a truncated config.json (case 25). */
static void test_kill_during_save(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    auto_machine struct machine *m = machine_new("victim", "none");
    assert_int_equal(store_create_machine(&s, m, &err), 0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct machine *mm = machine_new("victim", "none");
            /* A big driver object makes each save take a while. */
            for (int i = 0; i < 2000; i++) {
                char key[32];
                snprintf(key, sizeof key, "K%d", i);
                machine_driver_set_str(mm, key, "some value that takes room in the file");
            }
            struct merr e = MERR_INIT;
            for (int i = 0; i < 100000; i++)
                if (store_save_machine(&s, mm, &e) < 0)
                    _exit(2);
            _exit(0);
        }
        /* Readers racing the writer must never see a partial file either. */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        long budget_ms = 10 + round * 3;
        for (;;) {
            auto_machine struct machine *seen = store_load_machine(&s, "victim", &err);
            assert_non_null(seen);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
                budget_ms)
                break;
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        auto_machine struct machine *back = store_load_machine(&s, "victim", &err);
        assert_non_null(back);
    }
    store_release(&s);
    test_tmpdir_remove(root);
}

static void test_lock_excludes(void **state)
{
    char *root = test_tmpdir();
    struct store s;
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(root, &s, &err), 0);
    int fd = store_lock_machine(&s, "h1", 1000, &err);
    assert_true(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct merr e = MERR_INIT;
        int fd2 = store_lock_machine(&s, "h1", 200, &e);
        _exit(fd2 < 0 && e.code == MERR_BUSY ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fs_unlock(fd);
    store_release(&s);
    test_tmpdir_remove(root);
}

/* Files shipped next to the program (the engine bundle, machine-os.iso) are found relative to
 * the running binary: this test program finds itself, in order, and nothing that is missing. */
static void test_find_beside_exe(void **state)
{
    (void)state;
    const char *const rel[] = { "no-such-file", "../tests/test_store", "test_store", NULL };
    auto_free char *p = fs_find_beside_exe(rel);
    assert_non_null(p);
    assert_non_null(strstr(p, "/../tests/test_store"));
    const char *const none[] = { "no-such-file", "../no/such", NULL };
    assert_null(fs_find_beside_exe(none));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_beside_exe),
        cmocka_unit_test(test_open_creates_private_dirs),
        cmocka_unit_test(test_round_trip_and_list),
        cmocka_unit_test(test_missing_and_corrupt),
        cmocka_unit_test(test_duplicate_create),
        cmocka_unit_test(test_concurrent_create),
        cmocka_unit_test(test_kill_during_save),
        cmocka_unit_test(test_lock_excludes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
