/* plexus CLI — lab, guest and node tables from a coordinator REPLY. */
#ifndef PX_CLI_STATUS_PRINT_H
#define PX_CLI_STATUS_PRINT_H

#include <stdbool.h>

#include "fabric/core/wire.h"

void px_print_labs(const px_msg_reply *r);
void px_print_guests(const px_msg_reply *r);
void px_print_nodes(const px_msg_reply *r);
/* One JSON object: {"labs":[..],"guests":[..]} and/or {"nodes":[..]}. */
void px_print_json(const px_msg_reply *r, bool labs, bool nodes);

#endif
