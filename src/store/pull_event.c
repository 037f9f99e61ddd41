/* pull_event.c - the JSON of a pull's progress events (see pull_event.h).
 * Does not hold: the transfer or any output.
 */
#include <inttypes.h>
#include <string.h>

#include "store/pull_event.h"

const char *ea__pull_phase_name(enum ea_pull_phase p)
{
    switch (p) {
    case EA_PULL_RESOLVING: return "resolving";
    case EA_PULL_DOWNLOADING: return "downloading";
    case EA_PULL_VERIFYING: return "verifying";
    case EA_PULL_DONE: return "done";
    }
    return "?";
}

ea_status ea__pull_event_json(const struct ea_pull_progress *p, struct ea_buf *note,
                              struct ea_buf *progress)
{
    ea_status s = EA_OK;
    if (p->note) {
        s = ea__buf_puts(note, "{\"event\":\"note\",\"message\":");
        if (!s)
            s = ea__buf_json_str(note, p->note, strlen(p->note));
        if (!s)
            s = ea__buf_putc(note, '}');
    }
    if (!s)
        s = ea__buf_printf(progress, "{\"event\":\"progress\",\"phase\":\"%s\",\"name\":",
                           ea__pull_phase_name(p->phase));
    if (!s)
        s = ea__buf_json_str(progress, p->name, strlen(p->name));
    if (!s)
        s = ea__buf_puts(progress, ",\"file\":");
    if (!s)
        s = ea__buf_json_str(progress, p->file, strlen(p->file));
    if (!s)
        s = ea__buf_printf(progress,
                           ",\"done\":%" PRIu64 ",\"total\":%" PRIu64 ",\"resumed_from\":%" PRIu64 "}",
                           p->done, p->total, p->resumed_from);
    return s;
}
