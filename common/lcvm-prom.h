/* SPDX-License-Identifier: MIT */
/* The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile
 * collector reads and `promtool check metrics` checks): metric families written one after the
 * other, each with its HELP and TYPE lines and then its samples. Label values may come from a
 * guest (a VM's boot progress): they are made valid UTF-8, clipped and escaped here, so no value
 * can end a label, a line or a sample early. */
#pragma once
#include <glib.h>

typedef struct {
  GString *text;
  char *family; /* the family the next samples belong to */
  char *header; /* its HELP and TYPE lines, until its first sample writes them */
} LcvmProm;

LcvmProm *lcvm_prom_new(void);
void lcvm_prom_free(LcvmProm *prom);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmProm, lcvm_prom_free)

/* Starts a family: "# HELP name help" and "# TYPE name type" (gauge, counter, untyped),
 * written with its first sample: a family without samples leaves no trace. */
void lcvm_prom_family(LcvmProm *prom, const char *name, const char *type, const char *help);

/* One sample of the current family: labels are name, value pairs ending with NULL. A NULL
 * value is written as the empty string. */
void lcvm_prom_sample(LcvmProm *prom, double value, ...) G_GNUC_NULL_TERMINATED;

/* A label value as written between the quotes: valid UTF-8, at most max_chars characters
 * (0: no limit; a clipped value ends with "…"), backslash, double quote and newline escaped. */
char *lcvm_prom_escape_label(const char *value, glong max_chars);
