// Preloaded into Azurite by `python -m bench.critical_path --azurite-times` (NODE_OPTIONS=--require): for every
// request Azurite answers, when its handler got it and when its answer was written, on CLOCK_MONOTONIC
// (process.hrtime, the clock Python's time.monotonic reads), written as JSON lines to the file named by
// BENCH_AZURITE_TIMES_FILE as Azurite exits. The split this gives a storage call (Azurite's handling, and the
// rest: the caller's send and read, and waits for a core or for calls ahead) is what devhost's spans cannot see.
"use strict";
const fs = require("fs");
const http = require("http");

const target = process.env.BENCH_AZURITE_TIMES_FILE;
if (target) {
  const rows = [];
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, request, response) {
    if (event === "request") {
      const began = process.hrtime.bigint();
      response.once("finish", () => {
        rows.push([Number(began) / 1e9, Number(process.hrtime.bigint()) / 1e9, request.method, request.url]);
      });
    }
    return emit.apply(this, arguments);
  };
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    fs.writeFileSync(target, rows.map((row) => JSON.stringify(row)).join("\n"));
  };
  process.on("exit", write);
  process.on("SIGTERM", write); // Azurite's own handler still stops it; this only saves the rows first
}
