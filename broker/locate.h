/* locate.h - where a SUBMIT happened: how its location unit was found.
 *
 * An incident's location unit is either named by the submitter or found
 * by the broker from a position or an address. The method is recorded
 * with the incident (incident.located_by) and on its receive event.
 */
#ifndef GD_BROKER_LOCATE_H
#define GD_BROKER_LOCATE_H

/* How an incident's location unit was found. */
enum locate_method {
    LOCATE_NONE = 0, /* not located: no usable location (triage) */
    LOCATE_GIVEN,    /* the SUBMIT named a known unit */
    LOCATE_POSITION, /* lat/lon inside a grid or micro-grid boundary */
    LOCATE_ADDRESS,  /* address table, then the same as a position */
};

/* Database and wire name of a method: "", "given", "position",
 * "address". */
const char *locate_method_name(enum locate_method m);

/* The method named `s` (as locate_method_name writes it), or -1. */
int locate_method_parse(const char *s);

#endif
