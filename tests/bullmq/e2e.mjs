// End-to-end BullMQ scenario: drives a Redis-compatible server through
// BullMQ's real features (workers with concurrency, delayed jobs, retries
// with backoff, priorities, job schedulers, the rate limiter, flows, job
// removal and obliteration, job operations, global concurrency, stalled
// job recovery and competing workers) and checks every job's final state and the queue's job
// counts at the end of each part.
//
// Usage: node e2e.mjs [host] [port]   (or BULLMQ_HOST / BULLMQ_PORT)
//
// Prints a JSON summary on stdout that contains no ids, timestamps or other
// values that change between runs, so the summaries of two servers can be
// compared byte for byte. Diagnostics go to stderr. Exit status: 0 when
// every check passed, 1 when some check failed, 2 on a setup error.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { Queue, Worker, FlowProducer, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';

const require = createRequire(import.meta.url);
const BULLMQ_VERSION = require('bullmq/package.json').version;
const IOREDIS_VERSION = require('ioredis/package.json').version;

const host = process.argv[2] || process.env.BULLMQ_HOST || '127.0.0.1';
const port = Number(process.argv[3] || process.env.BULLMQ_PORT || '');
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node e2e.mjs HOST PORT (or set BULLMQ_HOST / BULLMQ_PORT)');
  process.exit(2);
}

/** Per-part time limit; a part that does not finish in time is failed. */
const PART_TIMEOUT_MS = Number(process.env.BULLMQ_PART_TIMEOUT_MS || 8000);
/** Whole-run time limit: the summary so far is printed and the run fails. */
const RUN_TIMEOUT_MS = Number(process.env.BULLMQ_RUN_TIMEOUT_MS || 90000);
/** Slack for client-side timing checks (event loop and network latency). */
const TIMING_SLACK_MS = 60;

const connection = { host, port, maxRetriesPerRequest: null, enableOfflineQueue: true };
const runTag = randomBytes(4).toString('hex');
const log = (...args) => console.error('[bullmq-e2e]', ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Unique queue name for this run; the summary never contains it. */
const queueName = (part) => `e2e-${part}-${runTag}`;

/**
 * Normalizes an error message for the summary: strips queue names, job ids
 * and script SHAs, and keeps the first line, so that messages are stable
 * between runs.
 */
function normalizeError(err) {
  let msg = String((err && err.message) || err);
  msg = msg.replace(/e2e-[a-z0-9]+-[0-9a-f]{8}/g, '<queue>');
  msg = msg.replace(/\b[0-9a-f]{40}\b/g, '<sha>');
  msg = msg.replace(/\b([Jj]ob) [0-9]+\b/g, '$1 <id>');
  msg = msg.split('\n')[0];
  // Unknown-command errors quote the arguments, which for EVAL is the
  // whole script: keep only the command name.
  msg = msg.replace(/(unknown command '[^']*'), with args beginning with: .*/, '$1');
  return msg.length > 300 ? `${msg.slice(0, 300)}...` : msg;
}

/** State shared by one part: its checks, failures, errors and resources. */
class Part {
  constructor(name) {
    this.name = name;
    this.checks = {};
    this.failures = [];
    this.errors = new Set();
    this.closers = [];
    this.queueNames = [];
  }

  /** Records an observed value under `key` and fails unless it equals `expected`. */
  expect(key, actual, expected) {
    this.checks[key] = actual;
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      this.failures.push(`${key}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    }
  }

  /** Records a boolean check; `detail` is only used in the failure message. */
  ensure(key, cond, detail = '') {
    this.checks[key] = Boolean(cond);
    if (!cond) this.failures.push(`${key} is false${detail ? ` (${detail})` : ''}`);
  }

  /** Records an unexpected error (worker 'error' events, thrown calls). */
  error(err) {
    this.errors.add(normalizeError(err));
  }

  /** A Queue with a name unique to this run, closed with the part. */
  queue(part, opts = {}) {
    const name = queueName(part);
    this.queueNames.push(name);
    const q = new Queue(name, { connection, ...opts });
    q.on('error', (e) => this.error(e));
    this.closers.push(() => q.close());
    return q;
  }

  /** A Worker on queue `name`, closed with the part. */
  worker(name, processor, opts = {}) {
    const w = new Worker(name, processor, { connection, ...opts });
    w.on('error', (e) => this.error(e));
    this.closers.push(() => w.close());
    return w;
  }

  /** Closes `closable` (a QueueEvents or FlowProducer) with the part. */
  track(closable) {
    this.closers.push(() => closable.close());
    return closable;
  }

  /** Closes every worker, queue and connection the part opened (newest first). */
  async close() {
    for (const close of this.closers.reverse()) {
      try {
        await withTimeout(close(), 5000, 'close');
      } catch (e) {
        this.error(e);
      }
    }
    this.closers = [];
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `cond` until it returns true; throws naming `what` on timeout. */
async function waitFor(what, cond, timeoutMs = 15000, stepMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Keys of the given queue, found with a raw SCAN. */
async function queueKeys(raw, name) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'MATCH', `bull:${name}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** getJobCounts with every state, keys sorted for a stable summary. */
async function counts(queue) {
  const c = await queue.getJobCounts();
  return Object.fromEntries(Object.keys(c).sort().map((k) => [k, c[k]]));
}

/** Obliterates the part's queues and checks that no key of theirs is left. */
async function obliterateAll(part, raw, queues) {
  const left = {};
  for (const q of queues) {
    await q.obliterate({ force: true });
  }
  for (const q of queues) {
    left[q.name] = (await queueKeys(raw, q.name)).map((k) => k.slice(`bull:${q.name}:`.length));
  }
  const names = Object.values(left).flat().sort();
  part.expect('keysLeftAfterObliterate', names, []);
}

// ---------------------------------------------------------------------------
// Parts

/** 1. 50 jobs on a worker with concurrency 5; return values and events. */
async function partConcurrency(part, raw) {
  const queue = part.queue('conc');
  const events = part.track(new QueueEvents(queue.name, { connection }));
  events.on('error', (e) => part.error(e));
  await events.waitUntilReady();
  let eventCompleted = 0;
  events.on('completed', () => {
    eventCompleted += 1;
  });

  let active = 0;
  let maxActive = 0;
  const done = new Set();
  const worker = part.worker(
    queue.name,
    async (job) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await job.updateProgress(50);
      await sleep(25);
      active -= 1;
      return { doubled: job.data.n * 2, name: job.name };
    },
    { concurrency: 5 },
  );
  worker.on('completed', (job) => done.add(job.id));

  const jobs = await queue.addBulk(
    Array.from({ length: 50 }, (_, n) => ({ name: `job-${n}`, data: { n } })),
  );
  await waitFor('50 completed jobs', () => done.size === 50);
  await waitFor('50 completed events', () => eventCompleted >= 50, 5000);

  let returnOk = 0;
  let stateOk = 0;
  let progressOk = 0;
  for (const j of jobs) {
    const job = await queue.getJob(j.id);
    if (job && (await job.getState()) === 'completed') stateOk += 1;
    if (job && job.returnvalue && job.returnvalue.doubled === j.data.n * 2 && job.returnvalue.name === j.name) {
      returnOk += 1;
    }
    if (job && job.progress === 50) progressOk += 1;
  }
  part.expect('completedStates', stateOk, 50);
  part.expect('returnValuesOk', returnOk, 50);
  part.expect('progressOk', progressOk, 50);
  part.expect('completedEvents', eventCompleted, 50);
  part.ensure('concurrencyUsed', maxActive > 1, `max active ${maxActive}`);
  part.ensure('concurrencyWithinLimit', maxActive <= 5, `max active ${maxActive}`);
  const completed = await queue.getCompleted(0, -1);
  part.expect('getCompletedLength', completed.length, 50);
  await worker.close();
  // The raw layout BullMQ's scripts left behind.
  const prefix = `bull:${queue.name}:`;
  const types = {};
  for (const suffix of ['completed', 'events', 'id', 'meta', jobs[0].id]) {
    types[suffix === jobs[0].id ? '<job>' : suffix] = await raw.type(prefix + suffix);
  }
  part.expect('keyTypes', types, {
    completed: 'zset',
    events: 'stream',
    id: 'string',
    meta: 'hash',
    '<job>': 'hash',
  });
  part.checks.jobHashFields = Object.keys(await raw.hgetall(prefix + jobs[0].id)).sort();
  part.expect('lastJobId', await raw.get(`${prefix}id`), String(50));
  part.expect('completedZsetMembers', (await raw.zcard(`${prefix}completed`)), 50);
  part.checks.counts = await counts(queue);
  part.expect('countsCompleted', part.checks.counts.completed, 50);
  await obliterateAll(part, raw, [queue]);
}

/** 2. Delayed jobs run after their delay, in delay order. */
async function partDelayed(part, raw) {
  const queue = part.queue('delay');
  const delays = { c: 800, a: 300, b: 550 };
  const addedAt = {};
  const ranAt = {};
  const order = [];
  const ids = {};
  for (const [name, delay] of Object.entries(delays)) {
    addedAt[name] = Date.now();
    const job = await queue.add(name, { delay }, { delay });
    ids[name] = job.id;
  }
  const states = {};
  for (const name of Object.keys(delays).sort()) {
    states[name] = await (await queue.getJob(ids[name])).getState();
  }
  part.expect('statesBeforeWorker', states, { a: 'delayed', b: 'delayed', c: 'delayed' });
  part.expect('countsBeforeWorker', (await counts(queue)).delayed, 3);

  const worker = part.worker(queue.name, async (job) => {
    ranAt[job.name] = Date.now();
    order.push(job.name);
    return `ran-${job.name}`;
  });
  await waitFor('3 delayed jobs', () => order.length === 3);
  part.expect('order', order, ['a', 'b', 'c']);
  const early = Object.keys(delays)
    .sort()
    .filter((n) => ranAt[n] - addedAt[n] < delays[n] - 5);
  part.expect('ranBeforeDelay', early, []);
  const late = Object.keys(delays)
    .sort()
    .filter((n) => ranAt[n] - addedAt[n] > delays[n] + 2000);
  part.expect('ranMuchLaterThanDelay', late, []);
  const finals = {};
  for (const name of Object.keys(delays).sort()) {
    const job = await queue.getJob(ids[name]);
    finals[name] = [await job.getState(), job.returnvalue, job.opts.delay];
  }
  part.expect('finalStates', finals, {
    a: ['completed', 'ran-a', 300],
    b: ['completed', 'ran-b', 550],
    c: ['completed', 'ran-c', 800],
  });
  await worker.close();
  part.checks.counts = await counts(queue);
  await obliterateAll(part, raw, [queue]);
}

/** 3. Retries with fixed and exponential backoff; exhausted attempts. */
async function partRetries(part, raw) {
  const queue = part.queue('retry');
  const attemptTimes = { flaky: [], doomed: [] };
  const worker = part.worker(queue.name, async (job) => {
    attemptTimes[job.name].push(Date.now());
    if (job.name === 'flaky' && job.attemptsMade < 2) {
      throw new Error(`flaky attempt ${job.attemptsMade + 1}`);
    }
    if (job.name === 'doomed') throw new Error('boom');
    return { attempt: job.attemptsMade + 1 };
  });
  const finished = new Set();
  worker.on('completed', (job) => finished.add(job.name));
  worker.on('failed', (job) => {
    if (job && job.attemptsMade >= job.opts.attempts) finished.add(job.name);
  });
  const flaky = await queue.add('flaky', {}, { attempts: 3, backoff: { type: 'fixed', delay: 150 } });
  const doomed = await queue.add('doomed', {}, { attempts: 3, backoff: { type: 'exponential', delay: 100 } });
  await waitFor('retried jobs to finish', () => finished.size === 2);

  const f = await queue.getJob(flaky.id);
  part.expect('flaky', {
    state: await f.getState(),
    attemptsMade: f.attemptsMade,
    returnvalue: f.returnvalue,
    runs: attemptTimes.flaky.length,
    stacktraceEntries: (f.stacktrace || []).length,
  }, { state: 'completed', attemptsMade: 3, returnvalue: { attempt: 3 }, runs: 3, stacktraceEntries: 2 });
  const fixedGaps = attemptTimes.flaky.slice(1).map((t, i) => t - attemptTimes.flaky[i]);
  part.ensure('fixedBackoffRespected', fixedGaps.length === 2 && fixedGaps.every((g) => g >= 150 - 5),
    `gaps ${fixedGaps}`);

  const d = await queue.getJob(doomed.id);
  part.expect('doomed', {
    state: await d.getState(),
    attemptsMade: d.attemptsMade,
    failedReason: d.failedReason,
    runs: attemptTimes.doomed.length,
    returnvalue: d.returnvalue ?? null,
  }, { state: 'failed', attemptsMade: 3, failedReason: 'boom', runs: 3, returnvalue: null });
  // Exponential backoff: 100 ms, then 200 ms.
  const expGaps = attemptTimes.doomed.slice(1).map((t, i) => t - attemptTimes.doomed[i]);
  part.ensure('exponentialBackoffRespected',
    expGaps.length === 2 && expGaps[0] >= 100 - 5 && expGaps[1] >= 200 - 5, `gaps ${expGaps}`);

  // A failed job can be retried by hand and fails again.
  await worker.close();
  part.checks.counts = await counts(queue);
  part.expect('countsFinal', [part.checks.counts.completed, part.checks.counts.failed], [1, 1]);
  await obliterateAll(part, raw, [queue]);
}

/** 4. Priorities on a paused queue with one worker of concurrency 1. */
async function partPriorities(part, raw) {
  const queue = part.queue('prio');
  await queue.pause();
  part.expect('isPaused', await queue.isPaused(), true);
  const order = [];
  const worker = part.worker(
    queue.name,
    async (job) => {
      order.push(job.name);
      await sleep(5);
      return job.opts.priority ?? 0;
    },
    { concurrency: 1 },
  );
  await worker.waitUntilReady();
  const specs = [
    ['p5', 5],
    ['p1-first', 1],
    ['p3', 3],
    ['p10', 10],
    ['p2', 2],
    ['p1-second', 1],
    ['p7', 7],
  ];
  for (const [name, priority] of specs) {
    await queue.add(name, {}, { priority });
  }
  const job = await queue.add('p4', {}, { priority: 8 });
  await job.changePriority({ priority: 4 });
  await sleep(300);
  part.expect('processedWhilePaused', order.length, 0);
  part.checks.countsWhilePaused = await counts(queue);
  await queue.resume();
  await waitFor('8 prioritized jobs', () => order.length === 8);
  part.expect('order', order, ['p1-first', 'p1-second', 'p2', 'p3', 'p4', 'p5', 'p7', 'p10']);
  await waitFor('8 completed', async () => (await queue.getCompletedCount()) === 8, 5000);
  await worker.close();
  part.checks.counts = await counts(queue);
  await obliterateAll(part, raw, [queue]);
}

/** 5. A job scheduler with every=200 and limit=3 produces exactly 3 runs. */
async function partScheduler(part, raw) {
  const queue = part.queue('sched');
  const runs = [];
  const worker = part.worker(queue.name, async (job) => {
    runs.push({ name: job.name, data: job.data });
    return runs.length;
  });
  await queue.upsertJobScheduler('every-200', { every: 200, limit: 3 }, { name: 'tick', data: { kind: 'tick' } });
  part.expect('schedulersAfterUpsert', await queue.getJobSchedulersCount(), 1);
  await waitFor('3 scheduled runs', () => runs.length >= 3, 10000);
  // Wait several more periods: the limit must stop further runs.
  await sleep(800);
  part.expect('runs', runs.length, 3);
  part.expect('runPayloads', runs, Array(3).fill({ name: 'tick', data: { kind: 'tick' } }));
  part.checks.schedulersAfterLimit = await queue.getJobSchedulersCount();
  await queue.removeJobScheduler('every-200');
  part.expect('schedulersAfterRemove', await queue.getJobSchedulersCount(), 0);
  await worker.close();
  part.checks.counts = await counts(queue);
  part.expect('countsCompleted', part.checks.counts.completed, 3);
  await obliterateAll(part, raw, [queue]);
}

/** 6. Worker rate limiter: at most `max` jobs per `duration`. */
async function partRateLimit(part, raw) {
  const queue = part.queue('rate');
  const max = 4;
  const duration = 400;
  const total = 12;
  const starts = [];
  await queue.addBulk(Array.from({ length: total }, (_, n) => ({ name: 'limited', data: { n } })));
  const worker = part.worker(
    queue.name,
    async () => {
      starts.push(Date.now());
    },
    { concurrency: 5, limiter: { max, duration } },
  );
  await waitFor(`${total} rate-limited jobs`, () => starts.length === total, 15000);
  await waitFor(`${total} completed`, async () => (await queue.getCompletedCount()) === total, 5000);
  starts.sort((a, b) => a - b);
  // Each window of the limiter admits at most `max` jobs and lasts at least
  // `duration`, so the jobs need ceil(total / max) windows.
  const windows = Math.ceil(total / max);
  const span = starts[total - 1] - starts[0];
  part.ensure('totalSpanRespectsLimit', span >= (windows - 1) * duration - TIMING_SLACK_MS, `span ${span} ms`);
  // Jobs i and i + 2*max are at least two windows apart.
  let minGap = Infinity;
  for (let i = 0; i + 2 * max < total; i += 1) minGap = Math.min(minGap, starts[i + 2 * max] - starts[i]);
  part.ensure('slidingWindowRespectsLimit', minGap >= duration - TIMING_SLACK_MS, `min gap ${minGap} ms`);
  part.ensure('notTooSlow', span < windows * duration + 3000, `span ${span} ms`);
  await worker.close();
  part.checks.counts = await counts(queue);
  part.expect('countsCompleted', part.checks.counts.completed, total);
  // The limiter counter lives in a key that expires with the window; it is
  // not removed by obliterate, so wait for it to expire.
  const limiterKey = `bull:${queue.name}:limiter`;
  const pttl = await raw.pttl(limiterKey);
  part.ensure('limiterKeyTtlWithinWindow', pttl === -2 || (pttl > 0 && pttl <= duration), `pttl ${pttl}`);
  await waitFor('limiter key to expire', async () => (await raw.exists(limiterKey)) === 0, duration + 2000);
  await obliterateAll(part, raw, [queue]);
}

/** 7. FlowProducer: a parent with children across two queues. */
async function partFlow(part, raw) {
  const parentQ = part.queue('flow-parent');
  const childQ = part.queue('flow-child');
  const flow = part.track(new FlowProducer({ connection }));
  flow.on('error', (e) => part.error(e));
  const childFinished = [];
  let parentStartedAfterChildren = null;
  let childValues = null;

  const tree = await flow.add({
    name: 'parent',
    queueName: parentQ.name,
    data: { kind: 'parent' },
    children: [1, 2, 3].map((idx) => ({
      name: `child-${idx}`,
      queueName: childQ.name,
      data: { idx },
      children:
        idx === 3 ? [{ name: 'grandchild', queueName: childQ.name, data: { idx: 30 } }] : undefined,
    })),
  });
  part.expect('parentStateBefore', await tree.job.getState(), 'waiting-children');
  part.expect('childrenInTree', tree.children.length, 3);
  part.expect('dependenciesBefore', await tree.job.getDependenciesCount(), {
    processed: 0,
    unprocessed: 3,
    ignored: 0,
    failed: 0,
  });
  const parentWorker = part.worker(parentQ.name, async (job) => {
    parentStartedAfterChildren = childFinished.length === 4;
    const values = await job.getChildrenValues();
    childValues = Object.values(values).sort((a, b) => a.v - b.v);
    return { sum: childValues.reduce((s, v) => s + v.v, 0) };
  });
  const childWorker = part.worker(
    childQ.name,
    async (job) => {
      await sleep(30 * (job.data.idx % 10));
      let grand = 0;
      if (job.name === 'child-3') {
        grand = Object.values(await job.getChildrenValues()).reduce((s, v) => s + v.v, 0);
      }
      return { v: job.data.idx * 10 + grand };
    },
    { concurrency: 3 },
  );
  childWorker.on('completed', (job) => childFinished.push(job.name));
  let parentDone = false;
  parentWorker.on('completed', () => {
    parentDone = true;
  });
  await waitFor('flow parent to complete', () => parentDone);
  const parent = await parentQ.getJob(tree.job.id);
  part.expect('parentState', await parent.getState(), 'completed');
  part.expect('parentStartedAfterChildren', parentStartedAfterChildren, true);
  part.expect('grandchildFirst', childFinished.indexOf('grandchild') < childFinished.indexOf('child-3'), true);
  part.expect('childrenValues', childValues, [{ v: 10 }, { v: 20 }, { v: 330 }]);
  part.expect('parentReturn', parent.returnvalue, { sum: 360 });
  part.expect('dependenciesAfter', await parent.getDependenciesCount(), {
    processed: 3,
    unprocessed: 0,
    ignored: 0,
    failed: 0,
  });
  const childStates = [];
  for (const node of tree.children) {
    const child = await childQ.getJob(node.job.id);
    childStates.push([child.name, await child.getState(), child.parentKey === `bull:${parentQ.name}:${tree.job.id}`]);
  }
  childStates.sort();
  part.expect('childStates', childStates, [
    ['child-1', 'completed', true],
    ['child-2', 'completed', true],
    ['child-3', 'completed', true],
  ]);
  await parentWorker.close();
  await childWorker.close();
  part.checks.countsParent = await counts(parentQ);
  part.checks.countsChild = await counts(childQ);
  await obliterateAll(part, raw, [parentQ, childQ]);
}

/** 8. job.remove, removeOnComplete/removeOnFail counts, obliterate. */
async function partRemoval(part, raw) {
  const queue = part.queue('remove');
  const removed = await queue.add('to-remove', { x: 1 });
  const kept = await queue.add('kept-waiting', { x: 2 }, { delay: 60000 });
  await removed.remove();
  part.expect('removedJobGone', (await queue.getJob(removed.id)) ?? null, null);
  const removedKeys = (await queueKeys(raw, queue.name)).filter((k) => k.endsWith(`:${removed.id}`));
  part.expect('removedJobKeys', removedKeys.length, 0);

  const ok = [];
  const bad = [];
  for (let n = 0; n < 5; n += 1) ok.push(await queue.add('ok', { n }, { removeOnComplete: 2 }));
  for (let n = 0; n < 4; n += 1) bad.push(await queue.add('bad', { n }, { removeOnFail: 1 }));
  const keepAll = await queue.add('ok', { n: 99 }, { removeOnComplete: false });
  const removeNow = await queue.add('ok', { n: 100 }, { removeOnComplete: true });
  let finished = 0;
  const worker = part.worker(
    queue.name,
    async (job) => {
      // Finished sets are ordered by finish time in ms: keep times distinct.
      await sleep(3);
      if (job.name === 'bad') throw new Error(`bad ${job.data.n}`);
      return job.data.n;
    },
    { concurrency: 1 },
  );
  worker.on('completed', () => {
    finished += 1;
  });
  worker.on('failed', () => {
    finished += 1;
  });
  await waitFor('11 finished jobs', () => finished === 11);
  await worker.close();
  const exists = async (jobs) => {
    const out = [];
    for (const j of jobs) out.push(Boolean(await queue.getJob(j.id)));
    return out;
  };
  // removeOnComplete: 2 keeps the last two completed jobs when each one
  // finishes; the job with removeOnComplete: false is never trimmed, and the
  // one with removeOnComplete: true is removed at once.
  part.expect('okJobsExist', await exists(ok), [false, false, false, true, true]);
  part.expect('badJobsExist', await exists(bad), [false, false, false, true]);
  part.expect('keepAllJobExists', (await exists([keepAll]))[0], true);
  part.expect('removeNowJobExists', (await exists([removeNow]))[0], false);
  part.expect('delayedStillThere', await (await queue.getJob(kept.id)).getState(), 'delayed');
  part.checks.counts = await counts(queue);

  const before = (await queueKeys(raw, queue.name)).length;
  part.ensure('keysBeforeObliterate', before > 0, `${before} keys`);
  await queue.obliterate({ force: true });
  part.expect('keysLeftAfterObliterate', (await queueKeys(raw, queue.name)).length, 0);
  part.checks.countsAfterObliterate = await counts(queue);
}

/** 9. Job operations: custom ids, deduplication, logs, data updates, promote, retry, clean, drain. */
async function partJobOps(part, raw) {
  const queue = part.queue('ops');
  const events = part.track(new QueueEvents(queue.name, { connection }));
  events.on('error', (e) => part.error(e));
  await events.waitUntilReady();

  const first = await queue.add('fixed', { v: 1 }, { jobId: 'fixed-id' });
  const again = await queue.add('fixed', { v: 2 }, { jobId: 'fixed-id' });
  part.expect('customIdReused', [first.id, again.id], ['fixed-id', 'fixed-id']);
  part.expect('customIdDataKept', (await queue.getJob('fixed-id')).data, { v: 1 });

  const d1 = await queue.add('dedup', { n: 1 }, { deduplication: { id: 'dd' } });
  const d2 = await queue.add('dedup', { n: 2 }, { deduplication: { id: 'dd' } });
  part.expect('deduplicatedToSameJob', d1.id === d2.id, true);
  part.expect('deduplicationJobId', (await queue.getDeduplicationJobId('dd')) === d1.id, true);

  await first.log('line one');
  await first.log('line two');
  const logCount = await first.log('line three');
  part.expect('logCount', logCount, 3);
  const logs = await queue.getJobLogs(first.id, 0, -1, true);
  part.expect('logs', logs, { logs: ['line one', 'line two', 'line three'], count: 3 });

  await first.updateData({ v: 10 });
  part.expect('updatedData', (await queue.getJob(first.id)).data, { v: 10 });

  const delayed = await queue.add('promoted', {}, { delay: 60000 });
  const moved = await queue.add('delay-changed', {}, { delay: 60000 });
  await delayed.promote();
  part.expect('promotedState', await delayed.getState(), 'waiting');
  await moved.changeDelay(200);
  part.checks.countsBeforeWorker = await counts(queue);

  const failOnce = new Set(['retry-me']);
  const processed = [];
  const worker = part.worker(
    queue.name,
    async (job) => {
      processed.push(job.name);
      if (failOnce.delete(job.name)) throw new Error('first run fails');
      return `done-${job.name}`;
    },
    { concurrency: 1 },
  );
  const retryMe = await queue.add('retry-me', {});
  await waitFor('retry-me to fail', async () => (await retryMe.getState()) === 'failed');
  part.expect('failedReasonBeforeRetry', (await queue.getJob(retryMe.id)).failedReason, 'first run fails');
  await (await queue.getJob(retryMe.id)).retry('failed');
  const result = await withTimeout(retryMe.waitUntilFinished(events, 10000), 11000, 'waitUntilFinished');
  part.expect('retriedResult', result, 'done-retry-me');
  await waitFor('delay-changed job to run', async () => (await moved.getState()) === 'completed', 5000);
  processed.sort();
  part.expect('processed', processed, ['dedup', 'delay-changed', 'fixed', 'promoted', 'retry-me', 'retry-me']);
  await worker.close();

  part.checks.countsAfterWorker = await counts(queue);
  const cleaned = await queue.clean(0, 100, 'completed');
  part.expect('cleanedCompleted', cleaned.length, 5);
  await queue.add('left-waiting', {});
  await queue.add('left-delayed', {}, { delay: 60000 });
  await queue.drain(true);
  part.checks.counts = await counts(queue);
  part.expect('countsAfterCleanAndDrain', [part.checks.counts.waiting, part.checks.counts.delayed, part.checks.counts.completed], [0, 0, 0]);
  await obliterateAll(part, raw, [queue]);
}

/** 10. Global concurrency and stalled-job recovery. */
async function partStalledAndGlobalConcurrency(part, raw) {
  const queue = part.queue('gconc');
  await queue.setGlobalConcurrency(2);
  part.expect('globalConcurrency', await queue.getGlobalConcurrency(), 2);
  let active = 0;
  let maxActive = 0;
  let done = 0;
  const limited = part.worker(
    queue.name,
    async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await sleep(30);
      active -= 1;
    },
    { concurrency: 5 },
  );
  limited.on('completed', () => {
    done += 1;
  });
  await queue.addBulk(Array.from({ length: 10 }, (_, n) => ({ name: 'g', data: { n } })));
  await waitFor('10 globally limited jobs', () => done === 10);
  part.expect('maxActiveUnderGlobalConcurrency', maxActive <= 2 && maxActive >= 1, true);
  await limited.close();
  await queue.removeGlobalConcurrency();
  part.expect('globalConcurrencyRemoved', await queue.getGlobalConcurrency(), null);

  // A worker that stops renewing its lock leaves its job stalled; another
  // worker's stalled check moves it back to wait and processes it.
  let hung = false;
  // A separate queue: the first worker's stalled check above holds the
  // queue's stalled-check key for its whole stalledInterval.
  const stallQueue = part.queue('stall-b');
  const stuck = part.worker(
    stallQueue.name,
    async () => {
      hung = true;
      return new Promise(() => {});
    },
    { lockDuration: 600, skipStalledCheck: true, skipLockRenewal: true },
  );
  const job = await stallQueue.add('stalls', { x: 1 });
  await waitFor('job to become active', () => hung, 5000);
  await stuck.close(true);
  part.expect('stateWhileStalled', await job.getState(), 'active');
  const stalledEvents = [];
  const rescuer = part.worker(stallQueue.name, async (j) => `rescued-${j.data.x}`, {
    lockDuration: 5000,
    stalledInterval: 300,
  });
  rescuer.on('stalled', (id) => stalledEvents.push(id === job.id));
  await waitFor('stalled job to complete', async () => (await job.getState()) === 'completed', 10000);
  const finished = await stallQueue.getJob(job.id);
  part.expect('stalledJob', {
    returnvalue: finished.returnvalue,
    stalledCounter: finished.stalledCounter,
    stalledEvents,
  }, { returnvalue: 'rescued-1', stalledCounter: 1, stalledEvents: [true] });
  await rescuer.close();
  part.checks.counts = await counts(queue);
  part.checks.countsStalledQueue = await counts(stallQueue);
  await obliterateAll(part, raw, [queue, stallQueue]);
}

/** 11. Two competing workers take 500 jobs: each job runs exactly once. */
async function partCompetingWorkers(part, raw) {
  const queue = part.queue('compete');
  const total = 500;
  const runs = new Map();
  const byWorker = { a: 0, b: 0 };
  let done = 0;
  const processor = (label) => async (job) => {
    runs.set(job.data.n, (runs.get(job.data.n) || 0) + 1);
    byWorker[label] += 1;
    if (job.data.n % 50 === 0) await sleep(2);
    return job.data.n;
  };
  for (const label of ['a', 'b']) {
    const w = part.worker(queue.name, processor(label), { concurrency: 10 });
    w.on('completed', () => {
      done += 1;
    });
  }
  for (let start = 0; start < total; start += 100) {
    await queue.addBulk(
      Array.from({ length: 100 }, (_, i) => ({ name: 'c', data: { n: start + i }, opts: { removeOnComplete: 100 } })),
    );
  }
  await waitFor(`${total} competing jobs`, () => done >= total, 20000);
  await sleep(100);
  const ranTwice = [...runs.values()].filter((c) => c !== 1).length;
  part.expect('distinctJobsRun', runs.size, total);
  part.expect('jobsRunMoreThanOnce', ranTwice, 0);
  part.expect('completedEvents', done, total);
  part.ensure('bothWorkersUsed', byWorker.a > 0 && byWorker.b > 0, JSON.stringify(byWorker));
  part.checks.counts = await counts(queue);
  part.expect('countsCompleted', part.checks.counts.completed, 100);
  await obliterateAll(part, raw, [queue]);
}

const PARTS = [
  ['1_concurrency', partConcurrency],
  ['2_delayed', partDelayed],
  ['3_retries', partRetries],
  ['4_priorities', partPriorities],
  ['5_scheduler', partScheduler],
  ['6_rate_limit', partRateLimit],
  ['7_flow', partFlow],
  ['8_removal', partRemoval],
  ['9_job_ops', partJobOps],
  ['10_stalled_global_concurrency', partStalledAndGlobalConcurrency],
  ['11_competing_workers', partCompetingWorkers],
];

// ---------------------------------------------------------------------------

const summary = {
  bullmq: BULLMQ_VERSION,
  ioredis: IOREDIS_VERSION,
  parts: {},
};

function finish(extraError) {
  const parts = Object.values(summary.parts);
  summary.passed = parts.filter((p) => p.ok).length;
  summary.failed = PARTS.length - summary.passed;
  if (extraError) summary.error = extraError;
  summary.ok = summary.failed === 0 && !extraError;
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return summary.ok ? 0 : 1;
}

async function main() {
  const raw = new IORedis({ ...connection, lazyConnect: true });
  raw.on('error', () => {});
  try {
    await withTimeout(raw.connect(), 10000, 'connect');
    await raw.ping();
  } catch (e) {
    log(`cannot connect to ${host}:${port}: ${e.message}`);
    return 2;
  }
  for (const [name, run] of PARTS) {
    const part = new Part(name);
    const started = Date.now();
    try {
      await withTimeout(run(part, raw), PART_TIMEOUT_MS, name);
    } catch (e) {
      part.failures.push(`exception: ${normalizeError(e)}`);
    }
    await part.close();
    // Queues left behind by a failed part are removed with plain commands
    // so later parts and the final key check start clean.
    for (const q of part.queueNames) {
      try {
        const keys = await queueKeys(raw, q);
        if (keys.length) await raw.del(...keys);
      } catch (e) {
        part.error(e);
      }
    }
    const errors = [...part.errors].sort();
    summary.parts[name] = {
      ok: part.failures.length === 0 && errors.length === 0,
      checks: part.checks,
      failures: part.failures,
      errors,
    };
    log(`${name}: ${summary.parts[name].ok ? 'ok' : 'FAILED'} in ${Date.now() - started} ms`);
    for (const f of part.failures) log(`  failure: ${f}`);
    for (const e of errors) log(`  error: ${e}`);
  }
  const leftover = [];
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'MATCH', `bull:e2e-*-${runTag}:*`, 'COUNT', 1000);
    cursor = next;
    leftover.push(...batch);
  } while (cursor !== '0');
  summary.leftoverKeys = leftover.length;
  await raw.quit().catch(() => {});
  return finish(leftover.length ? `${leftover.length} keys left behind` : undefined);
}

// Late rejections of a part that already timed out must not end the run.
process.on('unhandledRejection', (e) => log(`unhandled rejection: ${normalizeError(e)}`));

const hardStop = setTimeout(() => {
  log(`run timeout after ${RUN_TIMEOUT_MS} ms`);
  process.exit(finish(`run timeout after ${RUN_TIMEOUT_MS} ms`));
}, RUN_TIMEOUT_MS);

main()
  .then((code) => {
    clearTimeout(hardStop);
    process.exit(code);
  })
  .catch((e) => {
    clearTimeout(hardStop);
    log(`fatal: ${e && e.stack}`);
    process.exit(finish(`fatal: ${normalizeError(e)}`) || 1);
  });
