// SPDX-License-Identifier: MIT
// The page's only ways to the host: the helper's D-Bus API (io.lium.Cvm1 on the system bus)
// and the unprivileged frontend `lium-cvm --json`, both run with the logged-in user's rights.
// Nothing here decides what is allowed: the helper asks polkit, and its refusal is shown as
// it comes. Text that came from a guest is made printable before it reaches the page.

const cockpit = window.cockpit;

export const BUS_NAME = "io.lium.Cvm1";
export const ROOT_PATH = "/io/lium/Cvm1";
export const HOST_IFACE = "io.lium.Cvm1.Host";
export const MANAGER_IFACE = "io.lium.Cvm1.Manager";
export const VM_IFACE = "io.lium.Cvm1.Vm";
export const JOB_IFACE = "io.lium.Cvm1.Job";

let client = null;

export function bus() {
    if (!client)
        client = cockpit.dbus(BUS_NAME, { bus: "system" });
    return client;
}

// A guest's console or event text is shown, never interpreted: complete CSI and OSC escape
// sequences (cursor moves, colours, titles, clipboard writes) are dropped, and every other
// C0/C1 control but newline and tab, and DEL, becomes U+FFFD.
export function printable(text) {
    return String(text ?? "")
    // eslint-disable-next-line no-control-regex
            .replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g, "")
    // eslint-disable-next-line no-control-regex
            .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd");
}

export class LiumError extends Error {
    constructor(message, name) {
        super(message);
        this.dbusName = name || null;
    }
}

function errorFrom(ex, stdout) {
    if (stdout) {
        try {
            const doc = JSON.parse(stdout);
            if (doc && typeof doc.error === "string")
                return new LiumError(doc.error, doc.error_name);
        } catch (e) { /* not JSON: fall through */ }
    }
    if (ex && ex.problem === "not-found")
        return new LiumError("lium-cvm is not installed on this host (package lium-cvm).");
    return new LiumError((ex && (ex.message || ex.problem)) || String(ex), ex && ex.name);
}

// Runs `lium-cvm --json ARGS…`. Resolves with the parsed document; `check` exits 1 on a host
// that is not ready and still prints its report, so a JSON document without "error" counts
// as an answer whatever the exit status.
export function cli(args) {
    return new Promise((resolve, reject) => {
        cockpit.spawn(["lium-cvm", "--json", "--no-ask-password", ...args], { err: "message" })
                .then(out => {
                    try {
                        resolve(JSON.parse(out));
                    } catch (e) {
                        reject(new LiumError("lium-cvm printed no JSON: " + e.message));
                    }
                })
                .catch((ex, out) => {
                    if (out) {
                        try {
                            const doc = JSON.parse(out);
                            if (doc && typeof doc === "object" && !("error" in doc))
                                return resolve(doc);
                        } catch (e) { /* handled below */ }
                    }
                    reject(errorFrom(ex, out));
                });
    });
}

// Follows `lium-cvm logs -f` of one VM; calls onText with printable chunks. Returns the
// process so the caller can close it.
export function followConsole(name, lines, onText, onEnd) {
    const proc = cockpit.spawn(["lium-cvm", "logs", "-f", "-n", String(lines), name],
                               { err: "message" });
    proc.stream(data => onText(printable(data)));
    proc.then(() => onEnd(null)).catch(ex => onEnd(errorFrom(ex, null)));
    return proc;
}

function dbusError(ex) {
    return new LiumError(ex.message || String(ex), ex.name);
}

// A native Promise around cockpit's own: its handlers do not turn a throw into a rejection.
export function call(iface, method, args) {
    return new Promise((resolve, reject) => {
        bus().call(ROOT_PATH, iface, method, args)
                .then(resolve, ex => reject(dbusError(ex)));
    });
}

// Calls a method that answers with a Job and follows it to its end. onProgress gets
// {operation, progress (0..1), message}; resolves with the Job's result text, rejects with
// it when the Job failed.
export function callJob(iface, method, args, onProgress) {
    return call(iface, method, args).then(([path]) => followJob(path, onProgress));
}

// Subscribes to the Job's signals first, then reads its properties once: a Job that ended
// before the page looked still reports Done/Ok/Result.
export function followJob(path, onProgress) {
    return new Promise((resolve, reject) => {
        const job = {};
        const subscriptions = [];
        let done = false;
        const finish = (ok, result) => {
            if (done)
                return;
            done = true;
            subscriptions.forEach(s => s.remove());
            if (ok)
                resolve(printable(result));
            else
                reject(new LiumError(printable(result)));
        };
        const update = () => {
            onProgress({ operation: job.Operation, progress: job.Progress || 0, message: printable(job.Message) });
            if (job.Done)
                finish(job.Ok, job.Result);
        };
        subscriptions.push(bus().subscribe(
            { path, interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged" },
            (p, iface, signal, args) => {
                if (args[0] !== JOB_IFACE)
                    return;
                for (const [k, v] of Object.entries(args[1]))
                    job[k] = v.v;
                update();
            }));
        subscriptions.push(bus().subscribe(
            { path, interface: JOB_IFACE, member: "Finished" },
            (p, iface, signal, args) => finish(args[0], args[1])));
        bus().call(path, "org.freedesktop.DBus.Properties", "GetAll", [JOB_IFACE])
                .then(([props]) => {
                    for (const [k, v] of Object.entries(props))
                        if (!(k in job))
                            job[k] = v.v;
                    update();
                }, ex => {
                    if (!done)
                        reject(dbusError(ex));
                });
    });
}

// The live VM objects (/io/lium/Cvm1/vms/…): Manager.ListVms (allowed to all) names them,
// Properties.GetAll reads each, PropertiesChanged keeps them current. The helper has no
// ObjectManager, so ListVms is asked again every few seconds and after every start.
// onChange gets an array of {path, Name, State, …} (plain values). Returns {refresh, close}.
export function watchVms(onChange) {
    const vms = {};
    let closed = false;
    const emit = () => { if (!closed) onChange(Object.values(vms).filter(v => v.Name)) };
    const read = path =>
        new Promise((resolve, reject) => {
            bus().call(path, "org.freedesktop.DBus.Properties", "GetAll", [VM_IFACE]).then(resolve, reject);
        }).then(([props]) => {
            const plain = { path };
            for (const [k, v] of Object.entries(props))
                plain[k] = v.v;
            vms[path] = plain;
        }, () => { delete vms[path] });
    const list = () =>
        call(MANAGER_IFACE, "ListVms", [])
                .then(([paths]) => {
                    for (const p of Object.keys(vms))
                        if (!paths.includes(p))
                            delete vms[p];
                    return Promise.all(paths.map(read));
                })
                .then(emit, emit);
    const subscription = bus().subscribe(
        { interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged", path_namespace: ROOT_PATH + "/vms" },
        (path, iface, signal, args) => {
            if (args[0] !== VM_IFACE)
                return;
            if (!vms[path]) {
                read(path).then(emit);
                return;
            }
            for (const [k, v] of Object.entries(args[1]))
                vms[path][k] = v.v;
            emit();
        });
    const timer = window.setInterval(list, 5000);
    list();
    return {
        refresh: list,
        close() {
            closed = true;
            window.clearInterval(timer);
            subscription.remove();
        },
    };
}

export function formatUptime(startedAt, now) {
    if (!startedAt)
        return "";
    let s = Math.max(0, Math.floor(now / 1000) - Number(startedAt));
    const d = Math.floor(s / 86400); s %= 86400;
    const h = Math.floor(s / 3600); s %= 3600;
    const m = Math.floor(s / 60); s %= 60;
    if (d)
        return `${d}d ${h}h ${m}m`;
    if (h)
        return `${h}h ${m}m`;
    return `${m}m ${s}s`;
}
