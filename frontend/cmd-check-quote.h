/* SPDX-License-Identifier: MIT */
/* The quote path checks of `lium-cvm check --deep` (field-2026 §4.4-4.5): qgsd's journal
 * (healthy, not only listening), the PCCS answering with the configured use_secure_cert, and
 * the SGX platform's registration. Each check says what is wrong and what to do. They run
 * programs ([tools] journalctl, mpa_manage) with a clean environment and a deadline and open one
 * connection to the PCCS; they change nothing. */
#pragma once
#include "cli.h"
#include "lcvm-hostcheck.h"

void cli_check_quote_path(LcvmCli *cli, LcvmCheckReport *report);
