// The npm `durable-functions` client, used outside the Functions runtime, for test_npm_client.py.
//
// The Node worker would hand a function its durableClient input as the parsed binding object; here an
// InvocationContext from @azure/functions is built by hand with that object as the extra input, and the
// package's public getClient() turns it into a DurableClient. The script then serves calls on that
// client: one JSON request per stdin line, {"id", "method", "args"}, one JSON reply per stdout line,
// {"id", "ok", "result"} or {"id", "ok": false, "error"}. Arguments of the form {"$date": iso} become Dates;
// HttpResponse results become {"status", "headers", "body"}.
"use strict";

const readline = require("readline");
const { HttpRequest, HttpResponse, InvocationContext } = require("@azure/functions");
const df = require("durable-functions");

const binding = JSON.parse(process.argv[2]);
const clientInput = df.input.durableClient();
const context = new InvocationContext({
    invocationId: "conformance",
    functionName: "conformance",
    options: { extraInputs: [clientInput] },
});
context.extraInputs.set(clientInput, binding);
const client = df.getClient(context);

function revive(value) {
    if (Array.isArray(value)) {
        return value.map(revive);
    }
    if (value !== null && typeof value === "object") {
        if (typeof value.$date === "string") {
            return new Date(value.$date);
        }
        if (typeof value.$request === "string") {
            return new HttpRequest({ method: "GET", url: value.$request });
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
    }
    return value;
}

async function plain(result) {
    if (result instanceof HttpResponse) {
        return { status: result.status, headers: Object.fromEntries(result.headers), body: await result.text() };
    }
    return result === undefined ? null : result;
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
    queue = queue.then(async () => {
        const { id, method, args } = JSON.parse(line);
        let reply;
        try {
            if (typeof client[method] !== "function") {
                throw new Error(`DurableClient has no method ${method}`);
            }
            reply = { id, ok: true, result: await plain(await client[method](...revive(args))) };
        } catch (error) {
            reply = { id, ok: false, error: String((error && error.message) || error) };
        }
        process.stdout.write(JSON.stringify(reply) + "\n");
    });
});
lines.on("close", () => queue.then(() => process.exit(0)));
process.stdout.write(JSON.stringify({ ready: true, taskHubName: client.taskHubName }) + "\n");
