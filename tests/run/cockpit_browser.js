#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Drives Debian's Chromium (headless, through the DevTools protocol: puppeteer-core) against
// a real cockpit-ws serving the lium-cvm page. One scenario per run; it prints one JSON
// document with what it saw (texts read from the page) and keeps screenshots in OUTDIR.
// Assertions live in test_cockpit.py, which also checks the helper's side.
//
//   node cockpit_browser.js SCENARIO BASE_URL OUTDIR [ARG…]
//   scenarios: pages | bind SLOT | vm-cycle NAME MARKER | vms-outsider NAME
"use strict";
const puppeteer = require("puppeteer-core");
const path = require("path");

const [scenario, base, outdir, ...args] = process.argv.slice(2);
const CHROMIUM = process.env.LCVM_CHROMIUM || "/usr/bin/chromium";
const STEP_MS = Number(process.env.LCVM_BROWSER_STEP_MS || 120000);
const BOOT_MS = Number(process.env.LCVM_BROWSER_BOOT_MS || 300000);
const seen = { scenario, console_errors: [] };
let current = null; // the open page, for a screenshot and its text when a step fails

async function open(tab) {
    const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"],
        defaultViewport: { width: 1400, height: 1000 },
    });
    const page = await browser.newPage();
    current = page;
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", err => seen.console_errors.push(String(err)));
    page.on("console", msg => { if (msg.type() === "error") seen.console_errors.push(msg.text()) });
    await page.goto(`${base}/cockpit/@localhost/lium-cvm/index.html#/${tab}`, { waitUntil: "load" });
    await page.waitForFunction(() => {
        const el = document.getElementById("helper-version");
        return el && /helper \S+ on the system bus/.test(el.textContent);
    });
    return { browser, page };
}

async function shot(page, name) {
    await page.screenshot({ path: path.join(outdir, name), fullPage: true });
}

async function text(page, selector) {
    return page.$eval(selector, el => el.textContent);
}

async function showTab(page, label) {
    const tabs = await page.$$("button[role=tab]");
    for (const t of tabs) {
        if ((await t.evaluate(el => el.textContent.trim())) === label)
            return t.click();
    }
    throw new Error(`no tab ${label}`);
}

async function pages() {
    const { browser, page } = await open("host");
    await page.waitForSelector("#check-verdict");
    seen.host_verdict = await text(page, "#check-verdict");
    seen.checks = await page.$$eval("tr[data-check-id]", rows => rows.map(r => ({
        id: r.dataset.checkId, status: r.dataset.status,
        remedy: (r.querySelector(".lcvm-remedy") || {}).textContent || "",
    })));
    seen.areas = await page.$$eval(".lcvm-area", cards => cards.map(c => c.id.replace(/^area-/, "")));
    await shot(page, "host.png");
    await page.click("#check-rerun");
    await page.waitForFunction(() => !document.querySelector("#check-rerun").disabled);
    seen.rerun_checks = await page.$$eval("tr[data-check-id]", rows => rows.length);

    await showTab(page, "GPUs");
    await page.waitForSelector("#gpu-table tr[data-slot]");
    seen.gpus = await page.$$eval("#gpu-table tr[data-slot]", rows => rows.map(r => ({
        slot: r.dataset.slot, driver: r.querySelector(".lcvm-driver").textContent,
        held_by: r.querySelector(".lcvm-held").textContent,
    })));
    await shot(page, "gpus.png");

    await showTab(page, "CVMs");
    await page.waitForSelector("#vm-table tr[data-vm]");
    seen.vms = await vmRows(page);
    await shot(page, "vms.png");
    await browser.close();
}

async function vmRows(page) {
    return page.$$eval("#vm-table tr[data-vm]", rows => rows.map(r => ({
        name: r.dataset.vm, state: r.querySelector(".lcvm-vm-state").textContent,
        boot: r.querySelector(".lcvm-boot").textContent,
    })));
}

async function waitVmState(page, name, state, timeout) {
    await page.waitForFunction((n, s) => {
        const row = document.querySelector(`#vm-table tr[data-vm="${n}"] .lcvm-vm-state`);
        return row && row.textContent === s;
    }, { timeout }, name, state);
}

async function outcome(page) {
    const handle = await page.waitForFunction(() => {
        const el = document.querySelector("#action-ok, #action-error");
        return el && { ok: el.id === "action-ok", text: el.textContent };
    });
    return handle.jsonValue();
}

async function bind(slot) {
    const { browser, page } = await open("gpus");
    await page.waitForSelector(`tr[data-slot="${slot}"]`);
    seen.driver_before = await text(page, `tr[data-slot="${slot}"] .lcvm-driver`);
    await page.click(`tr[data-slot="${slot}"] .lcvm-bind`);
    const progress = page.waitForSelector("#job-progress", { timeout: 5000 }).then(() => true, () => false);
    seen.outcome = await outcome(page);
    seen.progress_seen = await progress;
    await page.waitForFunction(s => {
        const cell = document.querySelector(`tr[data-slot="${s}"] .lcvm-driver`);
        return cell && cell.textContent === "vfio-pci";
    }, { timeout: seen.outcome.ok ? STEP_MS : 1 }, slot).catch(() => null);
    seen.driver_after = await text(page, `tr[data-slot="${slot}"] .lcvm-driver`);
    await shot(page, `bind-${seen.outcome.ok ? "ok" : "refused"}.png`);
    await browser.close();
}

async function vmCycle(name, marker) {
    const { browser, page } = await open("vms");
    await page.waitForSelector(`tr[data-vm="${name}"] .lcvm-start`);
    await page.click(`tr[data-vm="${name}"] .lcvm-start`);
    seen.start = await outcome(page);
    await waitVmState(page, name, "running", STEP_MS);
    await page.click(`tr[data-vm="${name}"] .lcvm-select`);
    await page.waitForFunction(m => {
        const c = document.getElementById("vm-console");
        return c && c.textContent.includes(m);
    }, { timeout: BOOT_MS }, marker);
    seen.definition = await text(page, "#vm-definition");
    seen.console_text = await text(page, "#vm-console");
    seen.running_rows = await vmRows(page);
    await shot(page, "vm-running.png");
    await page.click(`tr[data-vm="${name}"] .lcvm-stop`);
    seen.stop_progress_seen = await page.waitForSelector("#job-progress", { timeout: 5000 })
            .then(() => true, () => false);
    seen.stop = await outcome(page);
    await waitVmState(page, name, "stopped", STEP_MS);
    seen.stopped_rows = await vmRows(page);
    await shot(page, "vm-stopped.png");
    await browser.close();
}

async function vmsOutsider() {
    const { browser, page } = await open("vms");
    await page.waitForSelector("#vms-error");
    seen.list_error = await text(page, "#vms-error");
    seen.start_buttons = (await page.$$(".lcvm-start")).length;
    // No button, but the page's D-Bus channel is there: the helper must refuse the call.
    seen.dbus_start = await page.evaluate(name =>
        new Promise(resolve => {
            window.cockpit.dbus("io.lium.Cvm1", { bus: "system" })
                    .call("/io/lium/Cvm1", "io.lium.Cvm1.Manager", "StartVm", [name, 0])
                    .then(() => resolve({ ok: true }),
                          ex => resolve({ ok: false, name: ex.name, message: ex.message }));
        }), args[0]);
    await shot(page, "vms-outsider.png");
    await browser.close();
}

const SCENARIOS = {
    pages: () => pages(),
    bind: () => bind(args[0]),
    "vm-cycle": () => vmCycle(args[0], args[1]),
    "vms-outsider": () => vmsOutsider(),  // ARG: a VM the outsider tries to start over D-Bus
};

(SCENARIOS[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))))()
        .then(() => { console.log(JSON.stringify(seen)); process.exit(0) })
        .catch(async err => {
            seen.error = String(err && err.stack || err);
            if (current) {
                await current.screenshot({ path: path.join(outdir, `failed-${scenario}.png`), fullPage: true })
                        .catch(() => null);
                seen.page_text = await current.evaluate(() => document.body.innerText).catch(() => null);
            }
            console.log(JSON.stringify(seen));
            process.exit(1);
        });
