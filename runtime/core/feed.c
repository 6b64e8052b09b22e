/*
 * feed.c - transitions as JSON (see feed.h). Depends on jansson and zone.c.
 */
#include "core/feed.h"

json_t *rg_time_json(rg_time t)
{
    char buf[RG_TIME_BUFSZ];
    return t == RG_TIME_NONE ? json_null() : json_string(rg_time_format(t, buf));
}

json_t *rg_time_local_json(const rg_zone *z, rg_time t)
{
    char buf[RG_TIME_BUFSZ];
    return t == RG_TIME_NONE ? json_null() : json_string(rg_zone_format(z, t, buf));
}

json_t *rg_transition_json(const rg_transition *t, int with_seq, const rg_zone *z)
{
    json_t *o = json_object();
    if (with_seq)
        json_object_set_new(o, "seq", json_integer(t->cseq));
    json_object_set_new(o, "at", rg_time_json(t->at));
    json_object_set_new(o, "state", json_string(RG_TRANSITION_STATE(t)));
    json_object_set_new(o, "clinic", json_string(t->clinic));
    json_object_set_new(o, "patient", json_string(t->patient));
    json_object_set_new(o, "protocol", json_string(t->protocol));
    json_object_set_new(o, "version", json_string(t->version));
    json_object_set_new(o, "rule", json_string(t->rule));
    json_object_set_new(o, "severity", json_string(t->severity));
    json_object_set_new(o, "key", json_string(t->key));
    json_object_set_new(o, "message", json_string(t->message));
    json_object_set_new(o, "due", rg_time_json(t->due));
    json_object_set_new(o, "at_local", rg_time_local_json(z, t->at));
    json_object_set_new(o, "due_local", rg_time_local_json(z, t->due));
    rg_time notify = t->notify_at == RG_TIME_NONE ? t->at : t->notify_at;
    json_object_set_new(o, "notify_at", rg_time_json(notify));
    json_object_set_new(o, "notify_at_local", rg_time_local_json(z, notify));
    return o;
}
