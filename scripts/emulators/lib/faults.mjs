// Fault injection: rules that pick, per emulated route, a fault for the next request.
// A rule either plays a scripted sequence (one step per matching request, in order)
// or draws a fault with a probability from a seeded generator, so runs are reproducible.

const FAULT_TYPES = new Set(['pass', 'status', 'reset', 'stall', 'truncate']);
const RESET_WHEN = new Set(['before', 'after', 'mid-body']);
const STALL_WHEN = new Set(['before', 'after']);

/** mulberry32: a tiny seeded PRNG; good enough to make fault draws repeatable. */
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function globToRegExp(glob) {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

export class FaultSpecError extends Error {}

function checkFault(fault, where) {
  if (fault === null || typeof fault !== 'object' || Array.isArray(fault)) {
    throw new FaultSpecError(`${where}: expected an object such as {"type": "status", "status": 503}`);
  }
  if (!FAULT_TYPES.has(fault.type)) {
    throw new FaultSpecError(`${where}.type: expected one of ${[...FAULT_TYPES].join(', ')}, got ${JSON.stringify(fault.type)}`);
  }
  if (fault.type === 'status') {
    if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
      throw new FaultSpecError(`${where}.status: expected an HTTP error status 400..599`);
    }
    if (fault.echo !== undefined && typeof fault.echo !== 'boolean') {
      throw new FaultSpecError(`${where}.echo: expected true (the error quotes the request) or false`);
    }
    if (fault.retryAfter !== undefined && !(Number.isFinite(fault.retryAfter) && fault.retryAfter >= 0)) {
      throw new FaultSpecError(`${where}.retryAfter: expected a number of seconds >= 0`);
    }
  }
  if (fault.type === 'reset' && fault.when !== undefined && !RESET_WHEN.has(fault.when)) {
    throw new FaultSpecError(`${where}.when: expected one of ${[...RESET_WHEN].join(', ')}`);
  }
  if (fault.type === 'stall' && !(Number.isFinite(fault.seconds) && fault.seconds >= 0 && fault.seconds <= 600)) {
    throw new FaultSpecError(`${where}.seconds: expected a number of seconds between 0 and 600`);
  }
  if (fault.type === 'stall' && fault.when !== undefined && !STALL_WHEN.has(fault.when)) {
    throw new FaultSpecError(`${where}.when: expected one of ${[...STALL_WHEN].join(', ')}`);
  }
  if (fault.type === 'truncate' && fault.fraction !== undefined && !(fault.fraction >= 0 && fault.fraction < 1)) {
    throw new FaultSpecError(`${where}.fraction: expected a number in [0, 1)`);
  }
  return { ...fault };
}

function checkRule(rule, where) {
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
    throw new FaultSpecError(`${where}: expected an object with "route" and either "sequence" or "probability"+"fault"`);
  }
  if (typeof rule.route !== 'string' || rule.route === '') {
    throw new FaultSpecError(`${where}.route: expected a route name or glob such as "ml.bes.status" or "aad.*"`);
  }
  if (rule.method !== undefined && typeof rule.method !== 'string') {
    throw new FaultSpecError(`${where}.method: expected an HTTP method name`);
  }
  const hasSequence = rule.sequence !== undefined;
  const hasProbability = rule.probability !== undefined;
  if (hasSequence === hasProbability) {
    throw new FaultSpecError(`${where}: give exactly one of "sequence" (a list of faults) or "probability" (with "fault")`);
  }
  const checked = { route: rule.route, method: rule.method ? rule.method.toUpperCase() : undefined };
  if (hasSequence) {
    if (!Array.isArray(rule.sequence) || rule.sequence.length === 0) {
      throw new FaultSpecError(`${where}.sequence: expected a non-empty list of faults`);
    }
    checked.sequence = rule.sequence.map((f, i) => checkFault(f, `${where}.sequence[${i}]`));
    checked.repeat = rule.repeat === true;
  } else {
    if (!(typeof rule.probability === 'number' && rule.probability >= 0 && rule.probability <= 1)) {
      throw new FaultSpecError(`${where}.probability: expected a number between 0 and 1`);
    }
    checked.probability = rule.probability;
    checked.fault = checkFault(rule.fault, `${where}.fault`);
    if (rule.times !== undefined && !(Number.isInteger(rule.times) && rule.times >= 0)) {
      throw new FaultSpecError(`${where}.times: expected a whole number of faults`);
    }
    checked.times = rule.times;
  }
  return checked;
}

export class FaultInjector {
  constructor() {
    this.clear();
  }

  clear() {
    this.seed = 1;
    this.rules = [];
  }

  /** Replaces every rule; `spec` is {seed?, rules: [...]}; throws FaultSpecError on bad input. */
  configure(spec) {
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
      throw new FaultSpecError('body: expected an object {"seed": 42, "rules": [...]}');
    }
    if (spec.seed !== undefined && !Number.isInteger(spec.seed)) {
      throw new FaultSpecError('seed: expected an integer');
    }
    if (!Array.isArray(spec.rules)) {
      throw new FaultSpecError('rules: expected a list of rules');
    }
    const rules = spec.rules.map((r, i) => checkRule(r, `rules[${i}]`));
    this.seed = spec.seed ?? 1;
    this.rules = rules.map((rule, index) => ({
      ...rule,
      index,
      pattern: globToRegExp(rule.route),
      // Each rule draws from its own stream so traffic on other routes cannot shift it.
      random: seededRandom((this.seed * 2654435761 + index * 40503) >>> 0),
      position: 0,
      fired: 0,
      matched: 0,
    }));
  }

  /** Returns the fault for this request (or null), advancing the first matching rule. */
  pick(route, method) {
    for (const rule of this.rules) {
      if (!rule.pattern.test(route)) continue;
      if (rule.method && rule.method !== method) continue;
      rule.matched += 1;
      if (rule.sequence) {
        if (rule.position >= rule.sequence.length) {
          if (!rule.repeat) continue;
          rule.position = 0;
        }
        const step = rule.sequence[rule.position];
        rule.position += 1;
        if (step.type === 'pass') return null;
        rule.fired += 1;
        return step;
      }
      if (rule.times !== undefined && rule.fired >= rule.times) continue;
      if (rule.random() < rule.probability) {
        rule.fired += 1;
        return rule.fault;
      }
      return null;
    }
    return null;
  }

  describe() {
    return {
      seed: this.seed,
      rules: this.rules.map((r) => ({
        route: r.route,
        method: r.method,
        sequence: r.sequence,
        repeat: r.repeat,
        probability: r.probability,
        fault: r.fault,
        times: r.times,
        matched: r.matched,
        fired: r.fired,
        remaining: r.sequence ? Math.max(0, r.sequence.length - r.position) : undefined,
      })),
    };
  }
}
