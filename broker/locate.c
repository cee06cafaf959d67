/* locate.c - where a SUBMIT happened: how its location unit was found. */
#include "locate.h"

#include <string.h>

static const char *const method_names[] = {
    [LOCATE_NONE] = "",
    [LOCATE_GIVEN] = "given",
    [LOCATE_POSITION] = "position",
    [LOCATE_ADDRESS] = "address",
};

const char *locate_method_name(enum locate_method m)
{
    return (unsigned)m < sizeof(method_names) / sizeof(method_names[0]) ? method_names[m] : "";
}

int locate_method_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(method_names) / sizeof(method_names[0])); i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}
