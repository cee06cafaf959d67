/* commands.c - gdctl's table of subcommands: adding one is a new cmd_*.c file plus one line here.
 */
#include "gdctl.h"

int cmd_submit(struct gdctl *g, int argc, char **argv);
int cmd_show(struct gdctl *g, int argc, char **argv);
int cmd_queues(struct gdctl *g, int argc, char **argv);
int cmd_watch(struct gdctl *g, int argc, char **argv);
int cmd_import(struct gdctl *g, int argc, char **argv);
int cmd_migrate(struct gdctl *g, int argc, char **argv);
int cmd_dispatch(struct gdctl *g, int argc, char **argv);
int cmd_approve(struct gdctl *g, int argc, char **argv);
int cmd_report(struct gdctl *g, int argc, char **argv);
int cmd_top(struct gdctl *g, int argc, char **argv);
int cmd_keygen(struct gdctl *g, int argc, char **argv);

const struct gdctl_command gdctl_commands[] = {
    {"submit",
     "[--source S] [--external-id X] [--category C] [--priority P] [--unit U] "
     "[--address A] [--lat LAT --lon LON] [--description D] [--attachment URL]...",
     "report a new incident (SUBMIT); prints its id, state and queue", cmd_submit},
    {"show", "[--reporter] ID | --source S --external-id X",
     "an incident with its history (QUERY); --reporter adds the reporter's contact data", cmd_show},
    {"queues", "[PREFIX]",
     "queue gauges from SNAPSHOT: depth, in flight, oldest age, overdue, consumers", cmd_queues},
    {"watch", "[--count N] [--seconds S] [PREFIX...]",
     "live status messages whose topic starts with a PREFIX (all when none)", cmd_watch},
    {"import",
     "org|categories|sla|calendar|hours|boundaries|addresses FILE [--sla FILE] "
     "[--format csv|geojson]",
     "import a CSV (boundaries, addresses: or GeoJSON) file into the database in one transaction "
     "(COPY + gd_import_*)",
     cmd_import},
    {"migrate", "[DIR]", "apply DIR/*.sql in name order (idempotent) [" GD_SQL_DIR "]",
     cmd_migrate},
    {"dispatch", "ID UNIT [NOTE]", "route a triage incident to an org unit (DISPATCH)",
     cmd_dispatch},
    {"approve", "ID [NOTE]", "approve an incident's pending extension request (APPROVE)",
     cmd_approve},
    {"deny", "ID [NOTE]", "deny an incident's pending extension request (APPROVE false)",
     cmd_approve},
    {"report",
     "[--by district|town|community|grid|category] [--from DATE] [--to DATE] "
     "[--period all|day|week|month] [--tz ZONE] [--format table|csv|json]",
     "KPI report from the event log (--db): on-time rates, sign/resolve times, backlog",
     cmd_report},
    {"top", "[--unit CODE] [--interval S] [--count N] [--plain]",
     "the dashboard's numbers per town/sector (or below --unit), redrawn in place (--status, --db)",
     cmd_top},
    {"keygen", "NAME [DIR]",
     "a CurveZMQ key pair: DIR/NAME.key (secret, 0600) and DIR/NAME.pub; prints a principals "
     "entry",
     cmd_keygen},
    {NULL, NULL, NULL, NULL},
};
