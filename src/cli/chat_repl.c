/* chat_repl.c - `run --chat`: interactive chat (arrives with chat templates). */
#include "cli/cli.h"
#include "cli/run_int.h"

int run_chat(struct run_session *rs, bool interactive)
{
    (void)rs;
    (void)interactive;
    cli_errorf("run", "chat mode needs chat templates, which this build does not have yet");
    return 2;
}
