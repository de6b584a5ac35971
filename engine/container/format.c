#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "container.h"
#include "fsutil.h"
#include "strv.h"

const char *ctr_status_name(enum ctr_status s)
{
    static const char *const names[] = {
        [CTR_CREATED] = "created",       [CTR_RUNNING] = "running", [CTR_PAUSED] = "paused",
        [CTR_RESTARTING] = "restarting", [CTR_REMOVING] = "removing", [CTR_EXITED] = "exited",
        [CTR_DEAD] = "dead",
    };
    return (size_t)s < sizeof names / sizeof names[0] ? names[s] : "dead";
}

char *fmt_rfc3339_nano(int64_t unix_ns)
{
    if (unix_ns <= 0)
        return xstrdup("0001-01-01T00:00:00Z");
    time_t secs = (time_t)(unix_ns / 1000000000);
    long nanos = (long)(unix_ns % 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanos == 0)
        return xasprintf("%sZ", base);
    char frac[16];
    snprintf(frac, sizeof frac, "%09ld", nanos);
    for (int i = 8; i > 0 && frac[i] == '0'; i--)
        frac[i] = '\0'; /* Go trims trailing zeros */
    return xasprintf("%s.%sZ", base, frac);
}

char *fmt_human_duration(int64_t s)
{
    if (s < 1)
        return xstrdup("Less than a second");
    if (s == 1)
        return xstrdup("1 second");
    if (s < 60)
        return xasprintf("%lld seconds", (long long)s);
    int64_t m = s / 60;
    if (m == 1)
        return xstrdup("About a minute");
    if (m < 60)
        return xasprintf("%lld minutes", (long long)m);
    int64_t h = (s + 1800) / 3600; /* Go rounds hours */
    if (h == 1)
        return xstrdup("About an hour");
    if (h < 48)
        return xasprintf("%lld hours", (long long)h);
    if (h < 24 * 7 * 2)
        return xasprintf("%lld days", (long long)(h / 24));
    if (h < 24 * 30 * 2)
        return xasprintf("%lld weeks", (long long)(h / 24 / 7));
    if (h < 24 * 365 * 2)
        return xasprintf("%lld months", (long long)(h / 24 / 30));
    return xasprintf("%lld years", (long long)(h / 24 / 365));
}

static int64_t secs_between(int64_t from_ns, int64_t to_ns)
{
    return to_ns > from_ns ? (to_ns - from_ns) / 1000000000 : 0;
}

char *ctr_status_text(const struct ctr_state *st, int64_t now_ns)
{
    switch (st->status) {
    case CTR_RUNNING:
    case CTR_PAUSED: {
        auto_free char *d = fmt_human_duration(secs_between(st->started_ns, now_ns));
        const char *health = st->health.status == CTR_HEALTH_STARTING    ? " (health: starting)"
                             : st->health.status == CTR_HEALTH_HEALTHY   ? " (healthy)"
                             : st->health.status == CTR_HEALTH_UNHEALTHY ? " (unhealthy)"
                                                                         : "";
        return xasprintf("Up %s%s", d, st->status == CTR_PAUSED ? " (Paused)" : health);
    }
    case CTR_RESTARTING: {
        auto_free char *d = fmt_human_duration(secs_between(st->finished_ns, now_ns));
        return xasprintf("Restarting (%d) %s ago", st->exit_code, d);
    }
    case CTR_REMOVING:
        return xstrdup("Removal In Progress");
    case CTR_DEAD:
        return xstrdup("Dead");
    case CTR_EXITED:
        if (st->finished_ns > 0) {
            auto_free char *d = fmt_human_duration(secs_between(st->finished_ns, now_ns));
            return xasprintf("Exited (%d) %s ago", st->exit_code, d);
        }
        return xasprintf("Exited (%d)", st->exit_code);
    case CTR_CREATED:
    default:
        return xstrdup("Created");
    }
}

static json_t *strv_json(char *const *v)
{
    if (v == NULL)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; v[i] != NULL; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* ps shows the command as one shell-ish string. */
static char *command_string(char *const *argv)
{
    size_t len = 1;
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        len += strlen(argv[i]) + 1;
    char *s = xcalloc(len, 1);
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

json_t *ctr_ps_json(const struct container *c, int64_t now_ns)
{
    auto_free char *status = ctr_status_text(&c->state, now_ns);
    auto_free char *cmd = command_string(c->plan.argv);
    auto_free char *slash_name = xasprintf("/%s", c->name);
    const char *net = c->config->network_mode;
    json_t *j = json_pack("{s:s,s:[s],s:s,s:s,s:s,s:I,s:[],s:O,s:s,s:s,s:{s:s},s:{s:{}}}", "Id",
                          c->id, "Names", slash_name, "Image", c->image_ref, "ImageID",
                          c->image_id, "Command", cmd, "Created",
                          (json_int_t)(c->created_ns / 1000000000), "Ports", "Labels",
                          c->plan.labels, "State", ctr_status_name(c->state.status), "Status",
                          status, "HostConfig", "NetworkMode", net, "NetworkSettings", "Networks");
    json_object_set_new(j, "Mounts", ctr_mounts_public(c->mounts));
    return j;
}

json_t *ctr_inspect_json(const struct container *c, const char *rootfs, const char *log_path)
{
    const struct ctr_state *st = &c->state;
    auto_free char *created = fmt_rfc3339_nano(c->created_ns);
    auto_free char *started = fmt_rfc3339_nano(st->started_ns);
    auto_free char *finished = fmt_rfc3339_nano(st->finished_ns);
    auto_free char *slash_name = xasprintf("/%s", c->name);
    const char *hostname = c->config->hostname != NULL ? c->config->hostname : "";
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", c->id);

    json_t *config = json_deep_copy(c->config->raw_config);
    json_object_set_new(config, "Hostname", json_string(hostname[0] != '\0' ? hostname : short_id));
    json_object_set_new(config, "Env", strv_json(c->plan.env));
    json_object_set_new(config, "Cmd", strv_json(c->config->cmd));
    json_object_set_new(config, "Entrypoint", strv_json(c->config->entrypoint));
    json_object_set_new(config, "WorkingDir",
                        json_string(strcmp(c->plan.cwd, "/") == 0 && c->config->working_dir == NULL
                                        ? ""
                                        : c->plan.cwd));
    json_object_set_new(config, "User", json_string(c->plan.user));
    json_object_set(config, "Labels", c->plan.labels);
    json_object_set_new(config, "Image", json_string(c->image_ref));
    json_object_set_new(config, "Tty", json_boolean(c->config->tty));
    json_object_set_new(config, "OpenStdin", json_boolean(c->config->open_stdin));
    json_object_set_new(config, "StopSignal", json_string(c->plan.stop_signal));

    json_t *host_config = json_deep_copy(c->config->raw_host_config);
    json_object_set_new(host_config, "NetworkMode", json_string(c->config->network_mode));
    const char *runtime = json_string_value(json_object_get(host_config, "Runtime"));
    if (runtime == NULL || runtime[0] == '\0') /* dockerd reports its default runtime */
        json_object_set_new(host_config, "Runtime", json_string("runc"));

    const char *path = c->plan.argv != NULL && c->plan.argv[0] != NULL ? c->plan.argv[0] : "";
    json_t *args = json_array();
    for (size_t i = 1; c->plan.argv != NULL && c->plan.argv[i] != NULL; i++)
        json_array_append_new(args, json_string(c->plan.argv[i]));

    json_t *state = json_pack(
        "{s:s,s:b,s:b,s:b,s:b,s:b,s:i,s:i,s:s,s:s,s:s}", "Status", ctr_status_name(st->status),
        "Running", st->status == CTR_RUNNING || st->status == CTR_PAUSED, "Paused",
        st->status == CTR_PAUSED, "Restarting", st->status == CTR_RESTARTING, "OOMKilled",
        st->oom_killed, "Dead", st->status == CTR_DEAD, "Pid",
        st->status == CTR_RUNNING || st->status == CTR_PAUSED ? st->pid : 0, "ExitCode",
        st->exit_code, "Error", st->error != NULL ? st->error : "", "StartedAt", started,
        "FinishedAt", finished);

    ctr_lifecycle_inspect(c, config, host_config, state);
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:o,s:o,s:{s:s,s:{}},"
                     "s:{s:s,s:{}},s:[]}",
                     "Id", c->id, "Created", created, "Path", path, "Args", args, "State", state,
                     "Image", c->image_id, "ResolvConfPath", "", "HostnamePath", "", "HostsPath",
                     "", "LogPath", log_path != NULL ? log_path : "", "Name", slash_name,
                     "RestartCount", st->restart_count, "Driver", "overlay2", "Platform", "linux",
                     "Config", config, "HostConfig", host_config, "GraphDriver", "Name",
                     "overlay2", "Data", "NetworkSettings", "Bridge", "", "Networks", "Mounts");
    json_object_set_new(j, "Mounts", ctr_mounts_public(c->mounts));
    return j;
}
