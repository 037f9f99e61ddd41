/* progress.c - progress of long CLI jobs on stderr: one updating line on a
 * terminal (done/total, percent, rate, ETA), a line per 10% otherwise, or
 * nothing. stdout is never touched: scripts parse it.
 * Does not hold: JSON progress events (the commands that offer them write
 * their own). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define REDRAW_INTERVAL_S 0.1
#define BAR_WIDTH 24
#define MB 1e6

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_init(struct cli_progress *p, enum cli_progress_mode mode, const char *label,
                       bool bytes, const char *unit)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->tty = isatty(STDERR_FILENO) != 0;
    p->bytes = bytes;
    p->label = label;
    p->unit = unit ? unit : "";
    p->t0 = now_s();
    p->base = UINT64_MAX;
    p->last_decile = -1;
}

static void fmt_amount(const struct cli_progress *p, uint64_t v, char *buf, size_t n)
{
    if (p->bytes)
        snprintf(buf, n, "%.1f", (double)v / MB);
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
}

void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total)
{
    if (p->mode == CLI_PROGRESS_QUIET || p->mode == CLI_PROGRESS_JSON)
        return;
    if (!p->tty && p->mode == CLI_PROGRESS_TTY_ONLY)
        return;
    double t = now_s();
    if (p->base == UINT64_MAX || done < p->base) {
        p->base = done; /* resumed bytes do not count toward the rate */
        p->t0 = t;
    }
    double el = t - p->t0;
    double rate = el > 0 ? (double)(done - p->base) / el : 0;
    char d[32], tot[32];
    fmt_amount(p, done, d, sizeof d);
    fmt_amount(p, total, tot, sizeof tot);
    const char *u = p->bytes ? "MB" : p->unit;
    double frac = total ? (double)done / (double)total : 0;
    if (frac > 1)
        frac = 1;
    if (!p->tty) {
        int dec = total ? (int)(frac * 10) : -1;
        if (dec <= p->last_decile || dec < 0)
            return;
        p->last_decile = dec;
        if (p->bytes)
            fprintf(stderr, "%s: %3d%% (%s/%s %s, %.1f MB/s)\n", p->label, dec * 10, d, tot, u,
                    rate / MB);
        else
            fprintf(stderr, "%s: %3d%% (%s/%s %s)\n", p->label, dec * 10, d, tot, u);
        return;
    }
    if (done != total && t - p->last_draw < REDRAW_INTERVAL_S)
        return;
    p->last_draw = t;
    char bar[BAR_WIDTH + 1];
    int fill = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : ' ';
    bar[BAR_WIDTH] = '\0';
    char eta[32] = "";
    if (total && rate > 0 && done < total) {
        double s = (double)(total - done) / rate;
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)(s / 60), (int)s % 60);
    }
    char speed[32] = "";
    if (p->bytes)
        snprintf(speed, sizeof speed, "  %.1f MB/s", rate / MB);
    else if (rate > 0)
        snprintf(speed, sizeof speed, "  %.1f %s/s", rate, u);
    if (total)
        fprintf(stderr, "\r%s %3d%% [%s] %s/%s %s%s%s\x1b[K", p->label, (int)(frac * 100), bar, d,
                tot, u, speed, eta);
    else
        fprintf(stderr, "\r%s %s %s%s\x1b[K", p->label, d, u, speed);
    fflush(stderr);
    p->drawn = true;
}

void cli_progress_note(struct cli_progress *p, const char *msg)
{
    if (p->mode == CLI_PROGRESS_QUIET || p->mode == CLI_PROGRESS_JSON)
        return;
    if (p->drawn)
        fprintf(stderr, "\r\x1b[K");
    p->drawn = false;
    fprintf(stderr, "%s: %s\n", p->label, msg);
}

void cli_progress_end(struct cli_progress *p, const char *summary)
{
    if (p->mode == CLI_PROGRESS_QUIET || p->mode == CLI_PROGRESS_JSON)
        return;
    if (p->drawn)
        fprintf(stderr, "\r\x1b[K");
    p->drawn = false;
    if (summary && (p->tty || p->mode != CLI_PROGRESS_TTY_ONLY))
        fprintf(stderr, "%s\n", summary);
}
