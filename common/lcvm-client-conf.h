/* SPDX-License-Identifier: MIT */
/* dstack's client.conf (/etc/dstack/client.conf), read the way dstack.py reads it: Python's
 * configparser with its defaults. Sections are case-sensitive, keys are not; "=" or ":"
 * separates key and value; both are stripped; full-line "#"/";" comments; indented lines
 * continue the previous value (joined with "\n"); no inline comments, no quote removal;
 * [DEFAULT] keys fill in for sections that exist. The last assignment wins. Pure: parses a
 * buffer, opens nothing. */
#pragma once
#include <glib.h>

/* The value of key in section, or NULL when the section or the key is absent. */
char *lcvm_client_conf_get(const char *text, const char *section, const char *key);

/* [docker] registry, as dstack.py writes it into .sys-config.json (docker_registry); NULL
 * when absent or empty (dstack.py then leaves the key out). */
char *lcvm_client_conf_docker_registry(const char *text);
