/* lineedit.c - raw-mode line editing for the chat prompt (see lineedit.h).
 * Keys: printable text, Backspace/Delete, Left/Right, Home/End, Up/Down
 * (history), Ctrl-A/E (line start/end), Ctrl-K/U (kill to end/start),
 * Ctrl-W (kill word), Ctrl-L (redraw), Enter, Ctrl-C, Ctrl-D. */
#include "cli/lineedit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)
#define HISTORY_MAX 200

struct buf {
    char *s;
    size_t len, cap, pos; /* pos: byte offset of the cursor */
};

static int insert(struct buf *b, const char *p, size_t n)
{
    if (b->len + n > LINE_MAX_BYTES)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    memmove(b->s + b->pos + n, b->s + b->pos, b->len - b->pos);
    memcpy(b->s + b->pos, p, n);
    b->len += n;
    b->pos += n;
    b->s[b->len] = '\0';
    return 0;
}

static size_t prev_char(const struct buf *b, size_t at)
{
    if (at == 0)
        return 0;
    at--;
    while (at > 0 && ((unsigned char)b->s[at] & 0xC0) == 0x80)
        at--;
    return at;
}

static size_t next_char(const struct buf *b, size_t at)
{
    if (at >= b->len)
        return b->len;
    at++;
    while (at < b->len && ((unsigned char)b->s[at] & 0xC0) == 0x80)
        at++;
    return at;
}

static void erase(struct buf *b, size_t from, size_t to)
{
    memmove(b->s + from, b->s + to, b->len - to);
    b->len -= to - from;
    if (b->pos > to)
        b->pos -= to - from;
    else if (b->pos > from)
        b->pos = from;
    if (b->s)
        b->s[b->len] = '\0';
}

static size_t columns(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void redraw(const char *prompt, const struct buf *b)
{
    /* carriage return, prompt, text, clear to end, move cursor back */
    fprintf(stdout, "\r%s", prompt);
    if (b->len)
        fwrite(b->s, 1, b->len, stdout);
    fputs("\x1b[K", stdout);
    size_t back = columns(b->s + b->pos, b->len - b->pos);
    if (back)
        fprintf(stdout, "\x1b[%zuD", back);
    fflush(stdout);
}

static void set_text(struct buf *b, const char *s)
{
    b->len = b->pos = 0;
    if (b->s)
        b->s[0] = '\0';
    insert(b, s, strlen(s));
}

static enum le_result read_plain(const char *prompt, char **line)
{
    fputs(prompt, stdout);
    fflush(stdout);
    size_t cap = 1024, n = 0;
    char *s = malloc(cap);
    int c;
    while (s && (c = getchar()) != EOF && c != '\n') {
        if (n + 1 >= cap) {
            if (cap >= LINE_MAX_BYTES)
                continue; /* drop the rest of an over-long line */
            char *t = realloc(s, cap * 2);
            if (!t)
                break;
            s = t;
            cap *= 2;
        }
        s[n++] = (char)c;
    }
    if (!s)
        return LE_EOF;
    if (n == 0 && c == EOF) {
        free(s);
        return LE_EOF;
    }
    s[n] = '\0';
    *line = s;
    return LE_LINE;
}

enum le_result le_read(struct lineedit *le, const char *prompt, char **line)
{
    *line = NULL;
    if (!isatty(STDIN_FILENO))
        return read_plain(prompt, line);
    struct termios orig, raw;
    if (tcgetattr(STDIN_FILENO, &orig) != 0)
        return read_plain(prompt, line);
    raw = orig;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG | IEXTEN);
    raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    struct buf b = {0};
    insert(&b, "", 0);
    int hist = le->n_history; /* index browsed; n_history = the line being edited */
    char *saved = NULL;
    enum le_result res = LE_LINE;
    redraw(prompt, &b);
    for (;;) {
        unsigned char c;
        if (read(STDIN_FILENO, &c, 1) != 1) {
            res = LE_EOF;
            break;
        }
        if (c == '\r' || c == '\n')
            break;
        if (c == 3) { /* Ctrl-C */
            res = LE_INTERRUPT;
            break;
        }
        if (c == 4) { /* Ctrl-D: EOF on an empty line, else delete */
            if (b.len == 0) {
                res = LE_EOF;
                break;
            }
            erase(&b, b.pos, next_char(&b, b.pos));
        } else if (c == 127 || c == 8) {
            erase(&b, prev_char(&b, b.pos), b.pos);
        } else if (c == 1) {
            b.pos = 0;
        } else if (c == 5) {
            b.pos = b.len;
        } else if (c == 11) {
            erase(&b, b.pos, b.len);
        } else if (c == 21) {
            erase(&b, 0, b.pos);
        } else if (c == 23) { /* Ctrl-W: previous word */
            size_t e = b.pos, s = b.pos;
            while (s > 0 && b.s[s - 1] == ' ')
                s--;
            while (s > 0 && b.s[s - 1] != ' ')
                s--;
            erase(&b, s, e);
        } else if (c == 12) {
            fputs("\x1b[H\x1b[2J", stdout);
        } else if (c == 27) { /* escape sequences: arrows, home/end, delete */
            unsigned char seq[3];
            if (read(STDIN_FILENO, &seq[0], 1) != 1 || read(STDIN_FILENO, &seq[1], 1) != 1)
                continue;
            if (seq[0] == '[' && seq[1] >= '0' && seq[1] <= '9') {
                if (read(STDIN_FILENO, &seq[2], 1) != 1)
                    continue;
                if (seq[2] == '~' && seq[1] == '3')
                    erase(&b, b.pos, next_char(&b, b.pos));
                else if (seq[2] == '~' && (seq[1] == '1' || seq[1] == '7'))
                    b.pos = 0;
                else if (seq[2] == '~' && (seq[1] == '4' || seq[1] == '8'))
                    b.pos = b.len;
            } else if (seq[0] == '[' || seq[0] == 'O') {
                switch (seq[1]) {
                case 'C': b.pos = next_char(&b, b.pos); break;
                case 'D': b.pos = prev_char(&b, b.pos); break;
                case 'H': b.pos = 0; break;
                case 'F': b.pos = b.len; break;
                case 'A':
                case 'B': {
                    int to = hist + (seq[1] == 'A' ? -1 : 1);
                    if (to < 0 || to > le->n_history)
                        break;
                    if (hist == le->n_history) {
                        free(saved);
                        saved = strdup(b.s ? b.s : "");
                    }
                    hist = to;
                    set_text(&b, hist == le->n_history ? (saved ? saved : "") : le->history[hist]);
                    break;
                }
                default: break;
                }
            }
        } else if (c >= 32 || c == '\t') {
            char ch = (char)c;
            insert(&b, &ch, 1);
        }
        redraw(prompt, &b);
    }
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &orig);
    fputs("\r\n", stdout);
    fflush(stdout);
    free(saved);
    if (res == LE_LINE) {
        *line = b.s ? b.s : strdup("");
    } else {
        free(b.s);
    }
    return res;
}

void le_add_history(struct lineedit *le, const char *line)
{
    if (!line || !*line)
        return;
    if (le->n_history && strcmp(le->history[le->n_history - 1], line) == 0)
        return;
    if (le->n_history == HISTORY_MAX) {
        free(le->history[0]);
        memmove(le->history, le->history + 1, sizeof *le->history * (HISTORY_MAX - 1));
        le->n_history--;
    }
    if (le->n_history == le->cap_history) {
        int cap = le->cap_history ? le->cap_history * 2 : 16;
        char **h = realloc(le->history, sizeof *h * (size_t)cap);
        if (!h)
            return;
        le->history = h;
        le->cap_history = cap;
    }
    char *copy = strdup(line);
    if (copy)
        le->history[le->n_history++] = copy;
}

void le_release(struct lineedit *le)
{
    for (int i = 0; i < le->n_history; i++)
        free(le->history[i]);
    free(le->history);
    memset(le, 0, sizeof *le);
}
