/* The event bus: docker's event shape, the ring (cursors, overflow, waiting), filters as the
 * docker 28 CLI sends them and since/until parsing. */
#include "test_helpers.h"

#include "api/api.h"
#include "events/events.h"

/* `docker events --since 1m --until 0s --filter type=container --filter event=die
 *  --filter label=a=b` (captured): */
static const char *cli_filters =
    "{\"event\":{\"die\":true},\"label\":{\"a=b\":true},\"type\":{\"container\":true}}";

static json_t *ctr_event(const char *action, const char *id, const char *name, const char *label)
{
    json_t *attrs = json_pack("{s:s,s:s}", "image", "busybox", "name", name);
    if (label != NULL)
        json_object_set_new(attrs, "a", json_string(label));
    return evt_build("container", action, id, attrs, 1700000000123456789LL);
}

static void test_shape(void **state)
{
    (void)state;
    json_t *ev = ctr_event("die", "abc123", "web", NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "Type")), "container");
    assert_string_equal(json_string_value(json_object_get(ev, "Action")), "die");
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "die");
    assert_string_equal(json_string_value(json_object_get(ev, "id")), "abc123");
    assert_string_equal(json_string_value(json_object_get(ev, "from")), "busybox");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID")),
                        "abc123");
    assert_int_equal(json_integer_value(json_object_get(ev, "time")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(ev, "timeNano")), 1700000000123456789LL);
    json_decref(ev);
    /* volumes carry no legacy status/id/from */
    ev = evt_build("volume", "create", "v1", NULL, 1);
    assert_null(json_object_get(ev, "status"));
    json_decref(ev);
}

static void test_filters(void **state)
{
    (void)state;
    struct api_filters f;
    struct merr err = MERR_INIT;
    assert_int_equal(api_filters_parse(cli_filters, &f, &err), 0);
    assert_int_equal(evt_filters_validate(&f, &err), 0);
    json_t *match = ctr_event("die", "abc", "web", "b");
    json_t *other_action = ctr_event("start", "abc", "web", "b");
    json_t *other_label = ctr_event("die", "abc", "web", "c");
    json_t *no_label = ctr_event("die", "abc", "web", NULL);
    json_t *vol = evt_build("volume", "die", "v", json_pack("{s:s}", "a", "b"), 1);
    assert_true(evt_filter_match(match, &f));
    assert_false(evt_filter_match(other_action, &f));
    assert_false(evt_filter_match(other_label, &f));
    assert_false(evt_filter_match(no_label, &f));
    assert_false(evt_filter_match(vol, &f));
    api_filters_release(&f);

    /* container=: name or ID prefix; other types are excluded */
    assert_int_equal(api_filters_parse("{\"container\":{\"web\":true}}", &f, &err), 0);
    assert_true(evt_filter_match(match, &f));
    assert_false(evt_filter_match(vol, &f));
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"container\":[\"ab\"]}", &f, &err), 0);
    assert_true(evt_filter_match(match, &f));
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"container\":[\"zz\"]}", &f, &err), 0);
    assert_false(evt_filter_match(match, &f));
    api_filters_release(&f);
    /* exec_start: cmd matches event=exec_start */
    json_t *exec = ctr_event("exec_start: sh -c true", "abc", "web", NULL);
    assert_int_equal(api_filters_parse("{\"event\":[\"exec_start\"]}", &f, &err), 0);
    assert_true(evt_filter_match(exec, &f));
    api_filters_release(&f);
    assert_int_equal(api_filters_parse("{\"bogus\":[\"x\"]}", &f, &err), 0);
    assert_int_equal(evt_filters_validate(&f, &err), -1);
    assert_int_equal(err.code, MERR_INVALID);
    api_filters_release(&f);
    json_decref(match);
    json_decref(other_action);
    json_decref(other_label);
    json_decref(no_label);
    json_decref(vol);
    json_decref(exec);
}

static void test_ring(void **state)
{
    (void)state;
    struct evt_bus *b = evt_bus_new(4);
    uint64_t live = evt_cursor_now(b);
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", i);
        evt_emit_at(b, "container", "create", id, NULL, 1000 + i);
    }
    json_t *out[8];
    /* the live reader fell behind: the two oldest are gone, the rest come in order */
    size_t n = evt_read(b, &live, out, 8, 0);
    assert_int_equal(n, 4);
    assert_string_equal(json_string_value(json_object_get(out[0], "id")), "c2");
    assert_string_equal(json_string_value(json_object_get(out[3], "id")), "c5");
    for (size_t i = 0; i < n; i++)
        json_decref(out[i]);
    /* nothing new: returns after the timeout with nothing */
    assert_int_equal(evt_read(b, &live, out, 8, 50), 0);
    uint64_t oldest = evt_cursor_oldest(b);
    assert_int_equal(evt_read(b, &oldest, out, 2, 0), 2);
    json_decref(out[0]);
    json_decref(out[1]);
    evt_bus_free(b);
    evt_bus_free(NULL);
    evt_emit(NULL, "container", "x", "y", json_object()); /* no bus: no-op, no leak */
}

static void test_times(void **state)
{
    (void)state;
    int64_t ns;
    struct merr err = MERR_INIT;
    assert_int_equal(evt_parse_time("1795410299", &ns, &err), 0); /* as the CLI sends it */
    assert_int_equal(ns, 1795410299000000000LL);
    assert_int_equal(evt_parse_time("1700000000.5", &ns, &err), 0);
    assert_int_equal(ns, 1700000000500000000LL);
    assert_int_equal(evt_parse_time("1700000000.000000001", &ns, &err), 0);
    assert_int_equal(ns, 1700000000000000001LL);
    static const char *const bad[] = { "", "x", "1m", "-5", "1.", "1.2.3", "12abc" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(evt_parse_time(bad[i], &ns, &err), -1);
        assert_int_equal(err.code, MERR_INVALID);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
