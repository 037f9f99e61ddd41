/* lineedit.h - a small line editor for the interactive chat of `run`:
 * raw-mode terminal input with cursor movement, UTF-8 aware editing and
 * history. Falls back to plain fgets when stdin is not a terminal. */
#ifndef EDGEAGENT_CLI_LINEEDIT_H
#define EDGEAGENT_CLI_LINEEDIT_H

#include <stddef.h>

struct lineedit {
    char **history;
    int n_history, cap_history;
};

enum le_result { LE_LINE, LE_EOF, LE_INTERRUPT };

/* Reads one line after printing prompt. *line is owned by the caller (free).
 * LE_EOF on Ctrl-D at an empty line or end of input; LE_INTERRUPT on Ctrl-C. */
enum le_result le_read(struct lineedit *le, const char *prompt, char **line);
void le_add_history(struct lineedit *le, const char *line);
void le_release(struct lineedit *le);

#endif
