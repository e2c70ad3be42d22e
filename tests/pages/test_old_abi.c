/* A box built before alloc_zeroed was added (a shorter descriptor) still
 * loads and works, and the host never reads the ops it lacks: calloc goes
 * through its alloc and the host's clearing. A descriptor shorter than
 * version 1's is refused with a message naming the sizes. */
#include "pages_test.h"

#include <string.h>
#include <unistd.h>

static void case_v1_loads(void)
{
    harness_open("[host]\nbox_dir = " V1_BOX_DIR "\n[route]\n1-max = old\n"
                 "[box.old]\nplugin = v1_box\n");
    CHECK(harness_desc("old")->ops.alloc_zeroed == NULL); /* the padded copy */
    unsigned char *p = harness_malloc(3 * MB);
    CHECK(p && owner_of(p) == harness_owner("old"));
    memset(p, 0xcd, 3 * MB);
    harness_free(p);
    unsigned char *c = harness_calloc(3, MB); /* alloc, then the host clears */
    CHECK(c && all_bytes(c, 3 * MB, 0));
    harness_free(c);
}

static void case_too_short_refused(void)
{
    char err[512];
    CHECK(harness_try_open("[host]\nbox_dir = " V1_BOX_DIR "\n[route]\n1-max = old\n"
                           "[box.old]\nplugin = v1_box_short\n",
                           err, sizeof err) != 0);
    CHECK(strstr(err, "expected at least"));
    CHECK(strstr(err, "ABI mismatch"));
}

int main(void)
{
    alarm(60); /* watchdog: a hang fails the suite */
    run_case("box built for the version 1 descriptor loads", case_v1_loads);
    run_case("descriptor shorter than version 1 refused", case_too_short_refused);
    return 0;
}
