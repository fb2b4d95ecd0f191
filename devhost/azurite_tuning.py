"""Fixes devhost loads into the Azurite it starts itself: two costs that grow with what Azurite holds, one
of every queue put, one of every receive, one of every call's log messages, and one of its start.

Azurite keeps its queue and table metadata in LokiJS collections. Two things there make every call
slower the more messages or rows Azurite holds, and a task hub holds many: each waiting orchestration
leaves its timer message in a control queue, and every instance adds history rows at the same RowKeys
(``0000000000000000``...) and an Instances row at RowKey ``""``.

- *Queues.* Every receive, delete and visibility update first clears expired messages, and it does so
  with ``remove(docs)`` even when ``docs`` is empty: LokiJS then rebuilds all four binary indices of
  the messages collection (every message of every queue) by sorting them. A receive that returns
  messages marks them with ``update(docs)``, which rebuilds them once more. With 1,000 timer messages
  waiting (W4) that is about 10 ms of Azurite's CPU per call, where the call itself costs 1.5-3 ms.
  The fix: an empty removal does nothing, and a short list of updates keeps the indices current one
  document at a time (LokiJS's own adaptive path, the one single updates and inserts already take).
  Finding the expired messages itself walks every message of the account through LokiJS's query
  machinery (a tenth of Azurite's CPU in W4 once the sorting is gone); the fix finds the same
  documents in one plain pass with LokiJS's own comparisons.
- *Tables.* Entity look-ups are ``findOne({RowKey, PartitionKey})``: LokiJS narrows by the first
  key's index, so a History look-up scans every partition holding that RowKey (one per instance), and
  an Instances look-up every row. Each operation of a checkpoint's ``$batch`` makes two or three such
  look-ups. The fix asks for the same entity by PartitionKey first (the two keys identify one entity,
  so the answer is the same).

- *Appends.* Azurite writes each queue message to an extent file through a write stream: the write on
  libuv's thread pool, then an ``fdatasync`` there, and only then the reply. Each of those is a trip to
  a pool thread and back, which on a busy machine means waiting for a core twice per put, and the sync
  waits for the disk besides (0.3 ms at the median and 4.5 ms at p99 on the ext4 virtual disk of the
  machine the benchmarks ran on). A put is the costliest call on ReserveTicket's way to its custom
  status, and it makes two. The fix writes small appends (a buffer of at most 256 KiB: every queue
  message) in place with ``writeSync`` and leaves out the sync; larger or streamed appends (blob
  uploads) keep the stream, without the sync.
  The bytes and the files are the same. The sync bought no durability: Azurite keeps each message's
  record (which extent, where) in LokiJS, in memory, and saves it every 5 s with neither fsync nor
  fdatasync, so a message put less than 5 s before a crash is lost with or without its bytes on disk.

- *Reads.* A receive reads each message's text back from its extent file through a read stream: an
  open, a read and a close, each a trip to libuv's thread pool. The fix reads a chunk of at most 256 KiB
  (every queue message; a blob's small blocks) with ``readSync`` and hands Azurite the bytes as its own
  ``BufferStream``; a larger chunk, or any failure such as a missing file, takes Azurite's own path and so
  gives its answer. A receive of one message: 1.54 -> 1.03 ms, Azurite's CPU 1.70 -> 1.15 ms
  (``python -m bench.storage_calls_cost``, least of five repeats of 200 calls, interleaved with an
  Azurite reading as before).

- *Log messages.* Azurite builds a message for every info, debug and verbose log call: the XML of each
  queue message with its blanks stripped, the JSON of each call's parameters, of a checkpoint's whole
  ``$batch`` request and of its response. Its logger writes them nowhere unless Azurite runs with
  ``--debug``, which devhost never passes. As Azurite's modules compile, each such call site asks first
  whether its logger is Azurite's own with the no-op strategy, and then makes no call, so the message is
  never built; any other logger is called as before, and warnings and errors are left alone. The
  arguments are read-only expressions, so nothing else changes. Measured in W1's flows one at a time
  (``python -m bench.paired``, six runs of 600 flows a side, the rewrite on the first pair in three and on
  the second in the others): start -> visible p95 0.42 ms lower on average, lower in five runs of six,
  p50 the same; calls back to back (``python -m bench.storage_calls_cost``): 0.02-0.05 ms less a call.

- *Start.* Azurite requires its telemetry library, applicationinsights, as it starts: about 1.4 s of
  CPU, half its start-up, although devhost starts it with ``--disableTelemetry`` and nothing then uses
  the library. The preload hands Azurite a stand-in for the module that loads the real one at its first
  use (any property read, check or write), so telemetry, if turned on, works as before. Azurite is ready
  in 1.1-1.2 s instead of 2.6-2.8 s (three starts each, ``bench.launcher.start_azurite``).

Nothing stored or answered changes: the same bytes go to the same extent files, the same documents are
found, removed and updated, the indices hold the same entries (only the order among equal keys can
differ, and Azurite sorts every result whose order matters), and responses are byte for byte the same.
The preload checks the shapes it relies on (LokiJS's methods, the messages collection's indices, the
extent store's write and read, Azurite's logger and its no-op strategy) and leaves Azurite as it is,
with a line in its log, when they differ.
``DEVHOST_AZURITE_TUNING=0`` turns it off.

It goes in through ``NODE_OPTIONS=--require``, written next to Azurite's log in its ``--location``
folder. An Azurite that devhost did not start is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from devhost.config import switched_on

ENV_SWITCH = "DEVHOST_AZURITE_TUNING"
APPLIED_LINE = "devhost tuning: applied"  # what the preload writes to Azurite's log once it is in place
APPENDS_LINE = "devhost tuning: extent appends written in place"
READS_LINE = "devhost tuning: extent reads of small chunks made in place"
LOGS_LINE = "devhost tuning: log messages that nothing writes are not built"
PRELOAD_NAME = "devhost-azurite-tuning.js"

# A receive returns at most 32 messages; longer update lists keep LokiJS's batch path.
_PRELOAD = r"""'use strict';
// Loaded into Azurite by devhost (devhost/azurite_tuning.py explains why). Behaviour stays the same.
const fs = require('fs');
const path = require('path');

function note(text) {
  process.stderr.write('devhost tuning: ' + text + '\n');
}

function azuriteSource() {
  return path.dirname(fs.realpathSync(process.argv[1]));  // .../azurite/dist/src
}

function tuneLookups(Collection) {
  const findOne = Collection.prototype.findOne;
  Collection.prototype.findOne = function (query) {
    if (query !== null && typeof query === 'object' && this.binaryIndices && this.binaryIndices.PartitionKey) {
      const keys = Object.keys(query);
      if (keys.length === 2 && keys[0] === 'RowKey' && keys[1] === 'PartitionKey' &&
          typeof query.RowKey === 'string' && typeof query.PartitionKey === 'string') {
        return findOne.call(this, { PartitionKey: query.PartitionKey, RowKey: query.RowKey });
      }
    }
    return findOne.apply(this, arguments);
  };
}

const APPLIED = 'applied (queue index upkeep and expiry scans, entity look-ups)';
const MESSAGE_INDICES = ['accountName', 'queueName', 'messageId', 'visibleTime'];
const SHORT_UPDATE = 32;

// Marks kept apart from the objects: an own property of a collection would be saved with it.
const tunedCollections = new WeakSet();

function tuneMessages(coll) {
  if (!coll || tunedCollections.has(coll)) return false;
  const indices = Object.keys(coll.binaryIndices || {});
  // Updating documents one at a time is right only while no indexed field is changed in place.
  if (!indices.every((name) => MESSAGE_INDICES.includes(name)) || coll.adaptiveBinaryIndices !== true ||
      coll.cloneObjects) {
    note('messages collection not as expected (indices ' + indices.join(',') + '); left as it is');
    return false;
  }
  coll.ensureAllIndexes(true);  // start from freshly built indices
  const remove = coll.remove;
  const update = coll.update;
  coll.remove = function (doc) {
    if (Array.isArray(doc) && doc.length === 0) return;
    return remove.apply(this, arguments);
  };
  coll.update = function (doc) {
    if (Array.isArray(doc) && doc.length <= SHORT_UPDATE) {
      for (const one of doc) update.call(this, one);
      return;
    }
    return update.apply(this, arguments);
  };
  tunedCollections.add(coll);
  return true;
}

// The same documents as LokiJS's find({accountName, queueName, expirationTime: {$lte: now}}), which
// walks the accountName index over every message of the account and calls an operator per message:
// one pass over the data with LokiJS's own comparisons (index equality for the account, === for the
// queue, $lte for the time), and no removal when nothing expired.
function tuneExpiry(Store, Loki) {
  const original = Store.prototype.clearExpiredMessages;
  const text = typeof original === 'function' ? original.toString() : '';
  if (!['checkQueueExist', 'expirationTime', '$lte', 'accountName', 'queueName', '.remove('].every(
      (part) => text.includes(part))) {
    note('clearExpiredMessages not as expected; left as it is');
    return;
  }
  const lt = (a, b) => Loki.Comparators.lt(a, b, false);
  const gt = (a, b) => Loki.Comparators.gt(a, b, false);
  Store.prototype.clearExpiredMessages = async function (account, queue, context) {
    this.checkQueueExist(account, queue, context);
    const coll = this.db.getCollection(this.MESSAGES_COLLECTION);
    const queryTime = new Date().getTime();
    const lte = Loki.LokiOps.$lte;
    const data = coll.data;
    const expired = [];
    for (let i = 0; i < data.length; i++) {
      const doc = data[i];
      if (doc.queueName !== queue) continue;
      const name = doc.accountName;
      if (name !== account && (lt(name, account) || gt(name, account))) continue;
      const expires = doc.expirationTime;
      // A Date compares as its time in $lte (an invalid one as NaN: never); anything else goes to $lte.
      if (expires instanceof Date ? expires.getTime() <= queryTime : lte(expires, queryTime)) expired.push(doc);
    }
    if (expired.length > 0) coll.remove(expired);
  };
}

// Small appends written in place and none synced (see the module's docstring). streamPipe(rs, ws, fd)
// writes rs to ws, fdatasyncs fd when it is a number and resolves with the byte count: handed no fd it
// does not sync, and a buffer's bytes go to fd with writeSync, ws (opened on fd, autoClose off) unused.
const SMALL_CHUNK = 256 * 1024;

function tuneAppends(Extents, BufferStream) {
  const pipe = Extents && Extents.prototype.streamPipe;
  const text = typeof pipe === 'function' ? pipe.toString() : '';
  if (typeof BufferStream !== 'function' ||
      !['fdatasync', 'typeof fd === "number"', '"finish"', 'ws.write('].every((part) => text.includes(part))) {
    note('extent appends not as expected; left as they are');
    return;
  }
  Extents.prototype.streamPipe = async function (rs, ws, fd, contextId) {
    if (typeof fd === 'number' && rs instanceof BufferStream && rs.offset === 0 &&
        Buffer.isBuffer(rs.buffer) && rs.buffer.length <= SMALL_CHUNK) {
      const data = rs.buffer;
      let written = 0;
      while (written < data.length) written += fs.writeSync(fd, data, written, data.length - written);
      ws.on('error', () => {});
      ws.end();
      return data.length;
    }
    return pipe.call(this, rs, ws, undefined, contextId);
  };
  note('extent appends written in place, unsynced');
}

// Small reads made in place (see the module's docstring). readExtent(chunk) resolves with a stream of the
// chunk's bytes, which createReadStream reads with an open, a read and a close on libuv's thread pool; a
// chunk of at most SMALL_CHUNK bytes is read here with readSync and handed over as a BufferStream. A zero
// extent, a larger chunk or any failure (a missing file) takes Azurite's own path, and so its answer.
const READS_LINE = 'extent reads of small chunks made in place';

function tuneReads(Extents, BufferStream, zeroExtent) {
  const read = Extents && Extents.prototype.readExtent;
  const text = typeof read === 'function' ? read.toString() : '';
  if (typeof BufferStream !== 'function' || typeof zeroExtent !== 'string' ||
      !['createReadStream', 'getExtentLocationId', 'generateExtentPath', 'start: extentChunk.offset',
        'end: extentChunk.offset + extentChunk.count - 1'].every((part) => text.includes(part))) {
    note('extent reads not as expected; left as they are');
    return;
  }
  Extents.prototype.readExtent = async function (chunk, contextId) {
    if (chunk === undefined || chunk === null || chunk.id === zeroExtent || !Number.isInteger(chunk.count) ||
        chunk.count <= 0 || chunk.count > SMALL_CHUNK || !Number.isInteger(chunk.offset) || chunk.offset < 0) {
      return read.apply(this, arguments);
    }
    const file = this.generateExtentPath(await this.metadataStore.getExtentLocationId(chunk.id), chunk.id);
    let data;
    try {
      const fd = fs.openSync(file, 'r');
      try {
        data = Buffer.allocUnsafe(chunk.count);
        let got = 0;
        while (got < chunk.count) {
          const n = fs.readSync(fd, data, got, chunk.count - got, chunk.offset + got);
          if (n === 0) break;  // the file ends sooner: a read stream would end there too
          got += n;
        }
        if (got < chunk.count) data = data.subarray(0, got);
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      return read.apply(this, arguments);
    }
    return new BufferStream(data);
  };
  note(READS_LINE);
}

// Azurite requires its telemetry library (applicationinsights) as it starts, about half of its start-up
// time, and devhost starts it with --disableTelemetry, so nothing uses it. The module is handed out as a
// stand-in that loads the real one at its first use: any property read, check or write goes to it.
const DEFERRED = 'applicationinsights';

function deferTelemetryLibrary() {
  const Module = require('module');
  const load = Module._load;
  if (typeof load !== 'function' || typeof Proxy !== 'function') {
    note(DEFERRED + ' left as it is');
    return;
  }
  Module._load = function (request, parent, isMain) {
    if (request !== DEFERRED) return load.apply(this, arguments);
    let real;
    const actual = () => (real === undefined ? (real = load.call(Module, request, parent, isMain)) : real);
    return new Proxy({}, {
      get: (_, key) => actual()[key],
      set: (_, key, value) => { actual()[key] = value; return true; },
      has: (_, key) => key in actual(),
      ownKeys: () => Reflect.ownKeys(actual()),
      getOwnPropertyDescriptor: (_, key) => {
        const found = Reflect.getOwnPropertyDescriptor(actual(), key);
        return found === undefined ? undefined : { ...found, configurable: true };
      },
      defineProperty: (_, key, descriptor) => Reflect.defineProperty(actual(), key, descriptor),
      deleteProperty: (_, key) => Reflect.deleteProperty(actual(), key),
    });
  };
  note(DEFERRED + ' loads at its first use');
}

// Azurite builds a message for every info, debug and verbose log call (the XML of each queue message
// with its blanks stripped, the JSON of a checkpoint's whole $batch request and response...) and hands it
// to its logger, which writes it nowhere unless Azurite runs with --debug (NoLoggerStrategy). As its
// modules compile, each such call site `<logger>.info(` becomes
// `<logger>[__devhostLogLevel(<logger>, "info")]?.(`: the same method of the same logger, unless that
// logger is Azurite's own with its no-op strategy, and then no call, the message left unbuilt. The
// arguments are only read-only expressions (strings, JSON of request parts), so skipping them changes
// nothing else; whatever logs anywhere (--debug, another logger) is called as before.
const LOGS_LINE = 'log messages that nothing writes are not built';

function skipUnwrittenLogMessages(source) {
  const Module = require('module');
  const compile = Module.prototype._compile;
  const { Logger } = require(path.join(source, 'common', 'Logger.js'));
  const NoLogger = require(path.join(source, 'common', 'NoLoggerStrategy.js')).default;
  if (typeof compile !== 'function' || typeof Logger !== 'function' || typeof NoLogger !== 'function') {
    note('log calls left as they are');
    return;
  }
  const unwritten = Symbol('devhost: nothing writes this');
  globalThis.__devhostLogLevel = (logger, level) =>
    (logger instanceof Logger && logger.strategy instanceof NoLogger ? unwritten : level);
  const site = /(?<![\w$.])((?:this\.|options\.)?logger)\.(info|debug|verbose)\(/g;
  const inside = source + path.sep;
  Module.prototype._compile = function (content, filename) {
    const args = Array.prototype.slice.call(arguments);
    if (typeof content === 'string' && typeof filename === 'string' && filename.startsWith(inside)) {
      args[0] = content.replace(site, (_, logger, level) => `${logger}[__devhostLogLevel(${logger}, "${level}")]?.(`);
    }
    return compile.apply(this, args);
  };
  note(LOGS_LINE);
}

deferTelemetryLibrary();

try {
  const source = azuriteSource();
  try {  // first, so that every Azurite module loaded after this one compiles with it
    skipUnwrittenLogMessages(source);
  } catch (error) {
    note('log calls left as they are: ' + (error && error.message));
  }
  try {  // apart from the LokiJS fixes: either may find Azurite not as it expects and leave only its part
    const Extents = require(path.join(source, 'common', 'persistence', 'FSExtentStore.js')).default;
    const BufferStream = require(path.join(source, 'common', 'utils', 'BufferStream.js')).default;
    tuneAppends(Extents, BufferStream);
    try {
      tuneReads(Extents, BufferStream,
                require(path.join(source, 'blob', 'persistence', 'IBlobMetadataStore.js')).ZERO_EXTENT_ID);
    } catch (error) {
      note('extent reads left as they are: ' + (error && error.message));
    }
  } catch (error) {
    note('extent appends and reads left as they are: ' + (error && error.message));
  }
  const Loki = require(require.resolve('lokijs', { paths: [source] }));
  const Collection = Loki.Collection;
  const Store = require(path.join(source, 'queue', 'persistence', 'LokiQueueMetadataStore.js')).default;
  const needed = [Collection && Collection.prototype.findOne, Collection && Collection.prototype.remove,
                  Collection && Collection.prototype.update, Collection && Collection.prototype.ensureAllIndexes,
                  Store && Store.prototype.init, Loki.LokiOps && Loki.LokiOps.$lte,
                  Loki.Comparators && Loki.Comparators.lt, Loki.Comparators && Loki.Comparators.gt];
  if (needed.some((f) => typeof f !== 'function')) {
    note('LokiJS or Azurite not as expected; left as they are');
  } else {
    tuneLookups(Collection);
    tuneExpiry(Store, Loki);
    const init = Store.prototype.init;
    Store.prototype.init = async function () {
      const result = await init.apply(this, arguments);
      try {
        if (tuneMessages(this.db.getCollection(this.MESSAGES_COLLECTION))) note(APPLIED);
      } catch (error) {
        note('messages collection left as it is: ' + (error && error.message));
      }
      return result;
    };
  }
} catch (error) {
  note('not applied: ' + (error && error.message));
}

"""


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    return switched_on(ENV_SWITCH, environ)


def write_preload(folder: Path) -> Path:
    """The preload script in ``folder`` (rewritten only when its text changed)."""
    target = folder / PRELOAD_NAME
    try:
        if target.read_text() == _PRELOAD:
            return target
    except OSError:
        pass
    partial = target.with_name(f".{PRELOAD_NAME}.{os.getpid()}")
    partial.write_text(_PRELOAD)
    partial.replace(target)  # atomic: another devhost on the same folder never loads half a file
    return target


def _quoted(path: Path) -> str:
    # NODE_OPTIONS splits on spaces; a double-quoted value may hold them (and escaped quotes).
    text = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def environment(folder: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start Azurite with: ``environ`` plus the preload, unless turned off."""
    env = dict(environ if environ is not None else os.environ)
    if not enabled(env):
        return env
    preload = write_preload(folder)
    existing = env.get("NODE_OPTIONS", "").strip()
    env["NODE_OPTIONS"] = f"{existing} --require {_quoted(preload)}".strip()
    return env
