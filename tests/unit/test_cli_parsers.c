/* Pure CLI pieces: flag parsing, templates, env output per shell, scp paths, URLs. */
#include "test_helpers.h"

#include "args.h"
#include "machine.h"
#include "netutil.h"
#include "scppath.h"
#include "shellenv.h"
#include "sshcmd.h"
#include "template.h"

static const struct opt_spec specs[] = {
    { "driver", 'd', OPT_STRING, "", NULL, NULL },  { "quiet", 'q', OPT_BOOL, "", NULL, NULL },
    { "yes", 'y', OPT_BOOL, "", NULL, NULL },       { "label", 0, OPT_LIST, "", NULL, NULL },
    { "timeout", 't', OPT_INT, "", "10", NULL },
};
#define NSPECS (sizeof specs / sizeof specs[0])

static void test_args_forms(void **state)
{
    char *argv[] = { "-d", "generic", "--label=a=1", "--label", "b=2", "-qy", "h1", "--timeout=3",
                     "--", "-notaflag", NULL };
    struct parsed_args a;
    struct merr err = MERR_INIT;
    assert_int_equal(args_parse(specs, NSPECS, 10, argv, false, &a, &err), 0);
    assert_string_equal(args_get(&a, "driver"), "generic");
    assert_true(args_get_bool(&a, "quiet"));
    assert_true(args_get_bool(&a, "yes"));
    char *const *labels = args_values(&a, "label");
    assert_string_equal(labels[0], "a=1");
    assert_string_equal(labels[1], "b=2");
    assert_null(labels[2]);
    long t = 0;
    assert_int_equal(args_get_int(&a, "timeout", &t, &err), 0);
    assert_int_equal(t, 3);
    assert_int_equal(args_npositional(&a), 2);
    assert_string_equal(a.positional[0], "h1");
    assert_string_equal(a.positional[1], "-notaflag");
    assert_false(a.help);
    args_release(&a);
}

static void test_args_defaults_and_help(void **state)
{
    char *argv[] = { "-dnone", "--quiet=false", "--help", NULL };
    struct parsed_args a;
    struct merr err = MERR_INIT;
    assert_int_equal(args_parse(specs, NSPECS, 3, argv, false, &a, &err), 0);
    assert_string_equal(args_get(&a, "driver"), "none");
    assert_false(args_get_bool(&a, "quiet"));
    assert_true(a.help);
    long t = 0;
    assert_int_equal(args_get_int(&a, "timeout", &t, &err), 0);
    assert_int_equal(t, 10);
    args_release(&a);
}

static void test_args_errors(void **state)
{
    struct parsed_args a;
    struct merr err = MERR_INIT;
    char *unknown[] = { "--bogus", NULL };
    assert_int_equal(args_parse(specs, NSPECS, 1, unknown, false, &a, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    char *missing[] = { "--driver", NULL };
    assert_int_equal(args_parse(specs, NSPECS, 1, missing, false, &a, &err), -1);
    char *badbool[] = { "--quiet=maybe", NULL };
    assert_int_equal(args_parse(specs, NSPECS, 1, badbool, false, &a, &err), -1);
    char *badint[] = { "-t", "ten", NULL };
    assert_int_equal(args_parse(specs, NSPECS, 2, badint, false, &a, &err), 0);
    long t;
    assert_int_equal(args_get_int(&a, "timeout", &t, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    args_release(&a);
    char *shortunk[] = { "-z", NULL };
    assert_int_equal(args_parse(specs, NSPECS, 1, shortunk, false, &a, &err), -1);
}

static void test_args_stop_at_positional(void **state)
{
    char *argv[] = { "h1", "ls", "-la", "--quiet", NULL };
    struct parsed_args a;
    struct merr err = MERR_INIT;
    assert_int_equal(args_parse(specs, NSPECS, 4, argv, true, &a, &err), 0);
    assert_int_equal(args_npositional(&a), 4);
    assert_false(args_get_bool(&a, "quiet"));
    args_release(&a);
}

static void test_template(void **state)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:i},s:b,s:[s]}", "Name", "h1", "Driver", "IPAddress",
                          "10.0.0.2", "SSHPort", 22, "Active", 1, "Labels", "a=1");
    struct merr err = MERR_INIT;
    char *s = template_render("{{.Name}}\t{{ .Driver.IPAddress }}:{{.Driver.SSHPort}} {{.Active}}", j,
                              &err);
    assert_string_equal(s, "h1\t10.0.0.2:22 true");
    free(s);
    s = template_render("{{json .Labels}}|{{.Missing}}|{{upper .Name}}", j, &err);
    assert_string_equal(s, "[\"a=1\"]|<no value>|H1");
    free(s);
    s = template_render("{{json .Driver}}", j, &err);
    assert_string_equal(s, "{\"IPAddress\":\"10.0.0.2\",\"SSHPort\":22}");
    free(s);
    assert_null(template_render("{{range .Labels}}x{{end}}", j, &err));
    assert_int_equal(err.code, MERR_INVALID);
    assert_null(template_render("{{.Name", j, &err));
    assert_int_equal(template_check("{{.a..b}}", &err), -1);
    auto_free char *u = template_unescape("{{.Name}}\\t{{.URL}}\\n");
    assert_string_equal(u, "{{.Name}}\t{{.URL}}\n");
    json_decref(j);
}

static void test_template_prettyjson_and_table(void **state)
{
    json_t *j = json_pack("{s:{s:s,s:i}}", "Driver", "IPAddress", "10.0.0.2", "SSHPort", 22);
    struct merr err = MERR_INIT;
    char *s = template_render("{{prettyjson .Driver}}", j, &err);
    assert_string_equal(s, "{\n    \"IPAddress\": \"10.0.0.2\",\n    \"SSHPort\": 22\n}");
    free(s);
    json_decref(j);
    /* Go's tabwriter(minwidth 5, padding 3): tab-ended cells padded, the last cell as is */
    char *t = template_tabulate("NAME\tDRIVER\tURL\nlonger-name\tnone\ttcp://x\nab\tx\n", 5, 3);
    assert_string_equal(t, "NAME          DRIVER   URL\n"
                           "longer-name   none     tcp://x\n"
                           "ab            x\n");
    free(t);
    /* widths count characters, not bytes */
    t = template_tabulate("\xe2\x88\x9e\tb\nabcd\tc", 1, 1);
    assert_string_equal(t, "\xe2\x88\x9e    b\nabcd c");
    free(t);
}

static void test_ssh_command_lines(void **state)
{
    char *w1[] = { "-L", "8080:localhost:80", "-N", "--", "ls", NULL };
    assert_int_equal(ssh_option_words(w1), 3);
    char *w2[] = { "ls", "-l", NULL };
    assert_int_equal(ssh_option_words(w2), 0);
    char *w3[] = { "-L8080:localhost:80", "-vt", "-o", "ServerAliveInterval=5", "uname", NULL };
    assert_int_equal(ssh_option_words(w3), 4);
    char *w4[] = { "-L", NULL }; /* value missing: not an option */
    assert_int_equal(ssh_option_words(w4), 0);
    char *w5[] = { "-Z", "x", NULL }; /* not an ssh option: the command */
    assert_int_equal(ssh_option_words(w5), 0);

    char *ssh[] = { "ssh", "-i", "/s/id ssh", "-p", "2222", "-o", "UserKnownHostsFile=/s/k,h",
                    "-o", "StrictHostKeyChecking=yes", "root@10.0.0.2", "--", "ls", NULL };
    assert_int_equal(ssh_argv_destination(ssh), 9);
    char *extra[] = { "-L", "80:localhost:80" };
    auto_strv char **with = ssh_argv_with_options(ssh, extra, 2);
    assert_string_equal(with[9], "-L");
    assert_string_equal(with[10], "80:localhost:80");
    assert_string_equal(with[11], "root@10.0.0.2");
    assert_string_equal(with[13], "ls");
    assert_null(with[14]);

    char *ssh2[] = { "ssh", "-i", "/s/it's", "-p", "22", "root@h", NULL };
    auto_free char *rsh = rsync_rsh(ssh2);
    assert_string_equal(rsh, "'ssh' '-i' '/s/it'\\''s' '-p' '22'");

    auto_free char *r4 = remote_spec("root", "10.0.0.2", "/srv");
    assert_string_equal(r4, "root@10.0.0.2:/srv");
    auto_free char *r6 = remote_spec("root", "fd00::2", "x");
    assert_string_equal(r6, "root@[fd00::2]:x");

    auto_strv char **fs = sshfs_argv(ssh, "root@10.0.0.2:/srv", "/mnt/x");
    const char *want[] = { "sshfs", "root@10.0.0.2:/srv", "/mnt/x", "-o", "IdentityFile=/s/id ssh",
                           "-p", "2222", "-o", "UserKnownHostsFile=/s/k\\,h", "-o",
                           "StrictHostKeyChecking=yes", NULL };
    for (size_t i = 0; want[i] != NULL; i++)
        assert_string_equal(fs[i], want[i]);
    assert_null(fs[11]);
}

static const struct env_var vars[] = {
    { "DOCKER_TLS_VERIFY", "1" },
    { "DOCKER_HOST", "tcp://10.0.0.2:2376" },
    { "DOCKER_CERT_PATH", "/root/.machine/machines/h1" },
    { "DOCKER_MACHINE_NAME", "h1" },
};

static void test_shellenv_each_shell(void **state)
{
    struct {
        enum shell_kind k;
        const char *expect_line;
        const char *expect_hint;
        const char *expect_unset;
    } cases[] = {
        { SHELL_POSIX, "export DOCKER_HOST=\"tcp://10.0.0.2:2376\"\n", "# eval $(machine env h1)\n",
          "unset DOCKER_HOST\n" },
        { SHELL_FISH, "set -gx DOCKER_HOST \"tcp://10.0.0.2:2376\";\n", "# eval (machine env h1)\n",
          "set -e DOCKER_HOST;\n" },
        { SHELL_POWERSHELL, "$Env:DOCKER_HOST = \"tcp://10.0.0.2:2376\"\n",
          "# & machine env h1 | Invoke-Expression\n", "Remove-Item Env:\\\\DOCKER_HOST\n" },
        { SHELL_CMD, "SET DOCKER_HOST=tcp://10.0.0.2:2376\n", "IN ('machine env h1') DO @%i\n",
          "SET DOCKER_HOST=\n" },
        { SHELL_TCSH, "setenv DOCKER_HOST \"tcp://10.0.0.2:2376\";\n", "# eval `machine env h1`\n",
          "unsetenv DOCKER_HOST;\n" },
        { SHELL_EMACS, "(setenv \"DOCKER_HOST\" \"tcp://10.0.0.2:2376\")\n", "machine env h1",
          "(setenv \"DOCKER_HOST\" nil)\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = shellenv_render(cases[i].k, vars, 4, false, "machine env h1");
        assert_non_null(strstr(out, cases[i].expect_line));
        assert_non_null(strstr(out, cases[i].expect_hint));
        assert_non_null(strstr(out, "DOCKER_MACHINE_NAME"));
        free(out);
        out = shellenv_render(cases[i].k, vars, 4, true, NULL);
        assert_non_null(strstr(out, cases[i].expect_unset));
        assert_null(strstr(out, "10.0.0.2"));
        free(out);
    }
}

static void test_shellenv_quoting_and_detection(void **state)
{
    struct env_var v = { "X", "a\"b$c`d\\e" };
    char *out = shellenv_render(SHELL_POSIX, &v, 1, false, NULL);
    assert_string_equal(out, "export X=\"a\\\"b\\$c\\`d\\\\e\"\n");
    free(out);
    assert_int_equal(shell_detect("/usr/bin/fish"), SHELL_FISH);
    assert_int_equal(shell_detect("/bin/tcsh"), SHELL_TCSH);
    assert_int_equal(shell_detect("/bin/zsh"), SHELL_POSIX);
    assert_int_equal(shell_detect(NULL), SHELL_POSIX);
    assert_int_equal(shell_detect("/opt/weird"), SHELL_POSIX);
    enum shell_kind k;
    struct merr err = MERR_INIT;
    assert_int_equal(shell_from_name("pwsh", &k, &err), 0);
    assert_int_equal(k, SHELL_POWERSHELL);
    assert_int_equal(shell_from_name("nushell", &k, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
}

static void test_scp_paths(void **state)
{
    struct scp_path p;
    struct merr err = MERR_INIT;
    assert_int_equal(scp_path_parse("h1:/etc/hosts", &p, &err), 0);
    assert_string_equal(p.machine, "h1");
    assert_string_equal(p.path, "/etc/hosts");
    assert_null(p.user);
    scp_path_release(&p);
    assert_int_equal(scp_path_parse("debian@lab-2:notes.txt", &p, &err), 0);
    assert_string_equal(p.user, "debian");
    assert_string_equal(p.machine, "lab-2");
    assert_string_equal(p.path, "notes.txt");
    scp_path_release(&p);
    assert_int_equal(scp_path_parse("h1:", &p, &err), 0);
    assert_string_equal(p.path, ".");
    scp_path_release(&p);
    assert_int_equal(scp_path_parse("./a:b", &p, &err), 0);
    assert_null(p.machine);
    assert_string_equal(p.path, "./a:b");
    scp_path_release(&p);
    assert_int_equal(scp_path_parse("/tmp/x", &p, &err), 0);
    assert_null(p.machine);
    scp_path_release(&p);
    assert_int_equal(scp_path_parse("bad_name:x", &p, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    assert_int_equal(scp_path_parse("@h1:x", &p, &err), -1);
    assert_int_equal(scp_path_parse("", &p, &err), -1);
}

static void test_tcp_urls(void **state)
{
    char *host = NULL;
    int port = 0;
    struct merr err = MERR_INIT;
    assert_int_equal(net_parse_tcp_url("tcp://10.1.2.3:2376", &host, &port, &err), 0);
    assert_string_equal(host, "10.1.2.3");
    assert_int_equal(port, 2376);
    free(host);
    assert_int_equal(net_parse_tcp_url("tcp://[::1]:12376", &host, &port, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 12376);
    free(host);
    assert_int_equal(net_parse_tcp_url("tcp://engine.lab", &host, &port, &err), 0);
    assert_string_equal(host, "engine.lab");
    assert_int_equal(port, 2376);
    free(host);
    const char *bad[] = { "http://x:1", "tcp://", "tcp://:2376", "tcp://h:0", "tcp://h:99999",
                          "tcp://h:12ab", "tcp://[::1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(net_parse_tcp_url(bad[i], &host, &port, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
    assert_true(net_is_ip("10.0.0.1"));
    assert_true(net_is_ip("fe80::1"));
    assert_false(net_is_ip("300.1.1.1"));
    assert_false(net_is_ip("host"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_forms),
        cmocka_unit_test(test_args_defaults_and_help),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_args_stop_at_positional),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_template_prettyjson_and_table),
        cmocka_unit_test(test_ssh_command_lines),
        cmocka_unit_test(test_shellenv_each_shell),
        cmocka_unit_test(test_shellenv_quoting_and_detection),
        cmocka_unit_test(test_scp_paths),
        cmocka_unit_test(test_tcp_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
