/* core/lifecycle with a fake driver (its verbs record their calls and fail on demand), a fake
 * SSH (the context's seam) and a fake provisioner: what create does when each step fails, what
 * start/stop/restart/kill/upgrade change and save, and that two operations on one machine are
 * serialised by its lock. No root, no network, no SSH. */
#include "test_helpers.h"

#include <pthread.h>
#include <time.h>

#include "certs.h"
#include "context.h"
#include "driver.h"
#include "lifecycle.h"
#include "machine.h"
#include "sshkey.h"
#include "store.h"

/* The context comes first, so a driver's ctx->owner leads back to the fixture. */
struct fx {
    struct machine_ctx ctx;
    char *root;
    pthread_mutex_t mu;
    char calls[1024];  /* "create,ssh-wait,os,provision," */
    const char *fail;  /* the call that fails, or NULL */
    int in_flight, max_in_flight;
    char pubkey[512];  /* what create was handed */
};

static struct fx *fx_of(const struct driver_ctx *dctx)
{
    return (struct fx *)dctx->owner;
}

/* Records a call; -1 (MERR_IO) when it is the one to fail. */
static int record(struct fx *f, const char *call, struct merr *err)
{
    pthread_mutex_lock(&f->mu);
    strncat(f->calls, call, sizeof f->calls - strlen(f->calls) - 2);
    strcat(f->calls, ",");
    pthread_mutex_unlock(&f->mu);
    if (f->fail != NULL && strcmp(f->fail, call) == 0)
        return merr_set(err, MERR_IO, 0, "%s failed on purpose", call);
    return 0;
}

static int fake_precreate(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return record(fx_of(c), "precreate", err);
}

static int fake_create(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    struct fx *f = fx_of(c);
    snprintf(f->pubkey, sizeof f->pubkey, "%s", c->ssh_public_key != NULL ? c->ssh_public_key : "");
    machine_driver_set_str(m, DKEY_IP, "10.0.0.2");
    machine_driver_set_str(m, "Power", "on");
    return record(f, "create", err);
}

static int fake_remove(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return record(fx_of(c), "remove", err);
}

/* A verb that takes a little while and counts how many run at once. */
static int slow_verb(const struct driver_ctx *c, struct machine *m, const char *call,
                     const char *power, struct merr *err)
{
    struct fx *f = fx_of(c);
    pthread_mutex_lock(&f->mu);
    if (++f->in_flight > f->max_in_flight)
        f->max_in_flight = f->in_flight;
    pthread_mutex_unlock(&f->mu);
    struct timespec ts = { 0, 30 * 1000 * 1000 }; /* widens the window a race would need */
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&f->mu);
    f->in_flight--;
    pthread_mutex_unlock(&f->mu);
    if (record(f, call, err) < 0)
        return -1;
    machine_driver_set_str(m, "Power", power);
    return 0;
}

static int fake_start(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return slow_verb(c, m, "start", "on", err);
}
static int fake_stop(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return slow_verb(c, m, "stop", "off", err);
}
static int fake_restart(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return slow_verb(c, m, "restart", "on", err);
}
static int fake_kill(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    return slow_verb(c, m, "kill", "off", err);
}
static int fake_upgrade(const struct driver_ctx *c, struct machine *m, struct merr *err)
{
    if (record(fx_of(c), "upgrade", err) < 0)
        return -1;
    machine_driver_set_str(m, "Image", "new");
    return 0;
}

static const struct driver fake_driver = {
    .name = "fake",
    .description = "records its calls",
    .flags = (const struct driver_flag[]){ { 0 } },
    .uses_ssh = true,
    .precreate_check = fake_precreate,
    .create = fake_create,
    .remove = fake_remove,
    .start = fake_start,
    .stop = fake_stop,
    .restart = fake_restart,
    .kill = fake_kill,
    .upgrade = fake_upgrade,
};

/* ---- the SSH seam and the provisioner ------------------------------------ */

static int fake_ssh_wait(const struct machine_ctx *ctx, const struct machine *m, int timeout_ms,
                         struct merr *err)
{
    return record((struct fx *)ctx, "ssh-wait", err);
}

static char *fake_ssh_output(const struct machine_ctx *ctx, const struct machine *m,
                             const char *cmd, struct merr *err)
{
    if (record((struct fx *)ctx, "os", err) < 0)
        return NULL;
    assert_string_equal(cmd, "cat /etc/os-release");
    return strdup("ID=debian\nPRETTY_NAME=\"Fake Linux\"\n");
}

static const struct machine_ssh_ops fake_ssh = { fake_ssh_wait, fake_ssh_output };

static int fake_provision(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    return record((struct fx *)ctx, "provision", err);
}

static int fake_install_certs(const struct machine_ctx *ctx, struct machine *m, struct merr *err)
{
    return record((struct fx *)ctx, "install-certs", err);
}

static char *fake_wait_engine(const struct machine_ctx *ctx, const struct machine *m,
                              int timeout_ms, struct merr *err)
{
    return record((struct fx *)ctx, "wait-engine", err) < 0 ? NULL : strdup("28.0");
}

static const struct machine_provisioner fake_provisioner = { fake_provision, fake_install_certs,
                                                             fake_wait_engine };

static const struct driver *const fake_table[] = { &fake_driver, NULL };

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->root = test_tmpdir();
    struct merr err = MERR_INIT;
    assert_int_equal(store_open(f->root, &f->ctx.store, &err), 0);
    f->ctx.log = (struct mlog){ .level = MLOG_ERROR, .out = stderr };
    f->ctx.drivers = fake_table;
    f->ctx.ssh_wait_ms = 1000;
    f->ctx.op_timeout_ms = 10000;
    f->ctx.lock_timeout_ms = 10000;
    f->ctx.ssh = &fake_ssh;
    f->ctx.provisioner = &fake_provisioner;
    pthread_mutex_init(&f->mu, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_release(&f->ctx.store);
    test_tmpdir_remove(f->root);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static void reset_calls(struct fx *f, const char *fail)
{
    f->calls[0] = '\0';
    f->fail = fail;
}

static struct machine *load(struct fx *f, const char *name)
{
    struct merr err = MERR_INIT;
    struct machine *m = store_load_machine(&f->ctx.store, name, &err);
    assert_non_null(m);
    return m;
}

/* ---- create ---------------------------------------------------------------- */

static void test_create_runs_every_step(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    auto_machine struct machine *m = machine_new("ok1", "fake");
    assert_int_equal(lifecycle_create(&f->ctx, &fake_driver, m, &err), 0);
    assert_string_equal(f->calls, "precreate,create,ssh-wait,os,provision,");
    auto_machine struct machine *saved = load(f, "ok1");
    assert_string_equal(saved->status, MACHINE_STATUS_CREATED);
    assert_string_equal(saved->os.id, "debian");

    /* the key pair is lifecycle's: made in the machine directory, its public half handed to
     * the driver's create */
    auto_free char *key = store_machine_file(&f->ctx.store, "ok1", "id_ssh");
    auto_free char *pub_path = store_machine_file(&f->ctx.store, "ok1", "id_ssh.pub");
    assert_string_equal(machine_driver_str(saved, DKEY_SSH_KEY), key);
    auto_free char *pub = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(pub_path, 4096, &pub, &len, &err), 0);
    assert_true(strncmp(pub, "ssh-ed25519 ", 12) == 0);
    assert_string_equal(f->pubkey, pub);
}

/* Whatever step fails once the driver's create ran, the driver's remove is called and the
 * machine stays saved as failed with the reason; a failure before it calls no remove. */
static void test_create_fails_at_each_step(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *fail, *calls;
        bool saved, removed;
    } cases[] = {
        { "precreate", "precreate,", false, false },
        { "create", "precreate,create,remove,", true, true },
        { "ssh-wait", "precreate,create,ssh-wait,remove,", true, true },
        { "os", "precreate,create,ssh-wait,os,remove,", true, true },
        { "provision", "precreate,create,ssh-wait,os,provision,remove,", true, true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "fail%zu", i);
        reset_calls(f, cases[i].fail);
        struct merr err = MERR_INIT;
        auto_machine struct machine *m = machine_new(name, "fake");
        assert_int_equal(lifecycle_create(&f->ctx, &fake_driver, m, &err), -1);
        assert_string_equal(f->calls, cases[i].calls);
        if (!cases[i].saved) {
            assert_int_equal(err.code, MERR_PRECREATE);
            auto_free char *dir = store_machine_dir(&f->ctx.store, name);
            assert_false(fs_exists(dir));
            continue;
        }
        auto_machine struct machine *saved = load(f, name);
        assert_string_equal(saved->status, MACHINE_STATUS_ERROR);
        assert_non_null(saved->error);
        assert_non_null(strstr(saved->error, "failed on purpose"));
    }
}

/* A user's key (generic's --generic-ssh-key) is copied, not replaced by a new one. */
static void test_create_copies_a_users_key(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    auto_free char *user_key = path_join(f->root, "id_user");
    auto_free char *user_pub = path_join(f->root, "id_user.pub");
    assert_int_equal(sshkey_generate_ed25519(user_key, user_pub, "user", &err), 0);
    auto_machine struct machine *m = machine_new("uk", "fake");
    machine_driver_set_str(m, DKEY_SSH_KEY_SOURCE, user_key);
    assert_int_equal(lifecycle_create(&f->ctx, &fake_driver, m, &err), 0);
    auto_free char *a = NULL, *b = NULL, *pa = NULL;
    size_t la = 0, lb = 0, lpa = 0;
    auto_free char *copy = store_machine_file(&f->ctx.store, "uk", "id_ssh");
    assert_int_equal(fs_read_file(user_key, 65536, &a, &la, &err), 0);
    assert_int_equal(fs_read_file(copy, 65536, &b, &lb, &err), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(fs_read_file(user_pub, 65536, &pa, &lpa, &err), 0);
    assert_string_equal(f->pubkey, pa);
}

/* ---- operations on an existing machine -------------------------------------- */

static void make_machine(struct fx *f, const char *name)
{
    struct merr err = MERR_INIT;
    auto_machine struct machine *m = machine_new(name, "fake");
    machine_driver_set_str(m, DKEY_IP, "10.0.0.2");
    machine_driver_set_str(m, "Power", "on");
    machine_set_status(m, MACHINE_STATUS_CREATED, NULL);
    assert_int_equal(store_create_machine(&f->ctx.store, m, &err), 0);
}

static void assert_power(struct fx *f, const char *name, const char *power)
{
    auto_machine struct machine *m = load(f, name);
    assert_string_equal(machine_driver_str(m, "Power"), power);
}

static void test_power_verbs_change_and_save(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    make_machine(f, "p1");
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_stop(&f->ctx, "p1", &err), 0);
    assert_string_equal(f->calls, "stop,");
    assert_power(f, "p1", "off");

    reset_calls(f, NULL);
    assert_int_equal(lifecycle_start(&f->ctx, "p1", &err), 0);
    assert_string_equal(f->calls, "start,ssh-wait,"); /* comes up: waited for */
    assert_power(f, "p1", "on");

    reset_calls(f, NULL);
    assert_int_equal(lifecycle_kill(&f->ctx, "p1", &err), 0);
    assert_string_equal(f->calls, "kill,");
    assert_power(f, "p1", "off");

    reset_calls(f, NULL);
    assert_int_equal(lifecycle_restart(&f->ctx, "p1", &err), 0);
    assert_string_equal(f->calls, "restart,ssh-wait,");
    assert_power(f, "p1", "on");

    /* a failed verb saves nothing */
    reset_calls(f, "stop");
    assert_int_equal(lifecycle_stop(&f->ctx, "p1", &err), -1);
    assert_int_equal(err.code, MERR_IO);
    assert_power(f, "p1", "on");

    assert_int_equal(lifecycle_start(&f->ctx, "nosuch", &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
}

/* start renews the engine certificate when the machine came back on another address. */
static void test_start_renews_certificate(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    make_machine(f, "r1");
    assert_int_equal(certs_bootstrap(f->ctx.store.certs_dir, "machine", &err), 0);
    auto_free char *ca = path_join(f->ctx.store.certs_dir, "ca.pem");
    auto_free char *ca_key = path_join(f->ctx.store.certs_dir, "ca-key.pem");
    auto_free char *cert = store_machine_file(&f->ctx.store, "r1", "server.pem");
    auto_free char *key = store_machine_file(&f->ctx.store, "r1", "server-key.pem");
    const char *sans[] = { "10.0.0.2" };
    assert_int_equal(certs_issue_server(ca, ca_key, "machine", sans, 1, cert, key, &err), 0);

    reset_calls(f, NULL);
    assert_int_equal(lifecycle_start(&f->ctx, "r1", &err), 0);
    assert_string_equal(f->calls, "start,ssh-wait,"); /* same address: nothing to renew */

    auto_machine struct machine *m = load(f, "r1");
    machine_driver_set_str(m, DKEY_IP, "10.0.0.9");
    assert_int_equal(store_save_machine(&f->ctx.store, m, &err), 0);
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_start(&f->ctx, "r1", &err), 0);
    assert_string_equal(f->calls, "start,ssh-wait,install-certs,wait-engine,");

    /* the same check from env/ls/ssh, outside any operation */
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_renew_certs(&f->ctx, m, &err), 1);
    assert_string_equal(f->calls, "install-certs,wait-engine,");
    machine_driver_set_str(m, DKEY_IP, "10.0.0.2");
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_renew_certs(&f->ctx, m, &err), 0);
    assert_string_equal(f->calls, "");
}

static void test_upgrade_and_provision(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    make_machine(f, "u1");
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_upgrade(&f->ctx, "u1", &err), 0);
    assert_string_equal(f->calls, "upgrade,ssh-wait,provision,");
    auto_machine struct machine *m = load(f, "u1");
    assert_string_equal(machine_driver_str(m, "Image"), "new");
    assert_string_equal(m->status, MACHINE_STATUS_CREATED);

    /* a failed upgrade is recorded on the machine (lifecycle's one failure path) */
    reset_calls(f, "provision");
    assert_int_equal(lifecycle_upgrade(&f->ctx, "u1", &err), -1);
    auto_machine struct machine *failed = load(f, "u1");
    assert_string_equal(failed->status, MACHINE_STATUS_ERROR);
    assert_non_null(strstr(failed->error, "failed on purpose"));

    /* provision again: no driver upgrade, and the machine is whole again */
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_provision(&f->ctx, "u1", &err), 0);
    assert_string_equal(f->calls, "provision,");
    auto_machine struct machine *fixed = load(f, "u1");
    assert_string_equal(fixed->status, MACHINE_STATUS_CREATED);
    assert_null(fixed->error);
}

static void test_rm(void **state)
{
    struct fx *f = *state;
    struct merr err = MERR_INIT;
    make_machine(f, "gone1");
    reset_calls(f, "remove");
    assert_int_equal(lifecycle_rm(&f->ctx, "gone1", false, &err), -1); /* the driver refused */
    auto_free char *dir = store_machine_dir(&f->ctx.store, "gone1");
    assert_true(fs_exists(dir));
    assert_int_equal(lifecycle_rm(&f->ctx, "gone1", true, &err), 0); /* -f: forgotten anyway */
    assert_false(fs_exists(dir));
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_rm(&f->ctx, "gone1", false, &err), -1);
    assert_int_equal(err.code, MERR_NOT_FOUND);
    assert_string_equal(f->calls, "");
}

/* ---- serialisation ---------------------------------------------------------- */

struct job {
    struct fx *f;
    int (*op)(const struct machine_ctx *, const char *, struct merr *);
    int rc;
};

static void *run_job(void *opaque)
{
    struct job *j = opaque;
    struct merr err = MERR_INIT;
    j->rc = j->op(&j->f->ctx, "c1", &err);
    return NULL;
}

static void test_operations_on_one_machine_are_serialised(void **state)
{
    struct fx *f = *state;
    make_machine(f, "c1");
    reset_calls(f, NULL);
    f->max_in_flight = 0;
    struct job jobs[4] = { { .f = f, .op = lifecycle_stop }, { .f = f, .op = lifecycle_start },
                           { .f = f, .op = lifecycle_kill }, { .f = f, .op = lifecycle_restart } };
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_job, &jobs[i]), 0);
    for (size_t i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
    }
    assert_int_equal(f->max_in_flight, 1); /* never two verbs at once on one machine */

    /* held by someone else past the bound: MERR_BUSY, and the driver is not called */
    struct merr err = MERR_INIT;
    int lock = store_lock_machine(&f->ctx.store, "c1", 1000, &err);
    assert_true(lock >= 0);
    f->ctx.lock_timeout_ms = 50;
    reset_calls(f, NULL);
    assert_int_equal(lifecycle_kill(&f->ctx, "c1", &err), -1);
    assert_int_equal(err.code, MERR_BUSY);
    assert_string_equal(f->calls, "");
    fs_unlock(lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_runs_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_fails_at_each_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_copies_a_users_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_verbs_change_and_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_renews_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_and_provision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operations_on_one_machine_are_serialised, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
