// A pickle interpreter that never executes code. It understands the opcodes of
// protocols 0-5 that checkpoints use and builds plain data from them. The only
// way a pickle can name code is GLOBAL/STACK_GLOBAL; those go through the
// caller's `resolveGlobal`, which returns inert placeholders (PyCallable) for a
// whitelist and throws for anything else. REDUCE/NEWOBJ then call those
// placeholders' JS implementations, never Python. Runtime-agnostic.
//
// Value mapping: None -> null, bool -> boolean, int -> number (bigint when
// beyond 2^53), float -> number, str -> string, bytes -> Uint8Array, tuple and
// list -> array, dict -> PyDict, set -> Set, instances -> PyObject.

/** A whitelisted global: calling it (REDUCE / NEWOBJ) runs this JS function on the arguments. */
export class PyCallable {
  constructor(readonly qualname: string, readonly call: (args: unknown[]) => unknown) {}
}

/** An inert instance of a Python class (e.g. a TorchScript module); BUILD stores its state. */
export class PyObject {
  state: unknown = undefined;
  constructor(readonly cls: string, readonly args: unknown[]) {}
}

/** A dict (or OrderedDict); BUILD on it (e.g. OrderedDict._metadata) stores `state`. */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  state: unknown = undefined;
  constructor(readonly cls = 'dict') {}
}

export interface UnpickleOptions {
  /** Names the file in errors. */
  name: string;
  /** Resolves `module.qualname` to a value (usually a PyCallable); must throw for anything not allowed. */
  resolveGlobal(module: string, qualname: string): unknown;
  /** Resolves a persistent id (torch: storage references). Without it, persistent ids are an error. */
  persistentLoad?(pid: unknown): unknown;
}

/** Opcode names, for error messages about unsupported ones. */
const UNSUPPORTED: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x53: 'STRING', 0x56: 'UNICODE',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let op = 0, opAt = 0;

  const fail = (msg: string): never => {
    throw new Error(`${opts.name}: pickle: ${msg} (opcode 0x${op.toString(16)} at byte ${opAt})`);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.byteLength) fail(`truncated: needs ${n} more bytes`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)]!;
  const u16 = () => dv.getUint16(need(2), true);
  const u32 = () => dv.getUint32(need(4), true);
  const i32 = () => dv.getInt32(need(4), true);
  const u64 = () => {
    const at = need(8);
    const v = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32;
    if (!Number.isSafeInteger(v)) fail('64-bit length too large');
    return v;
  };
  const take = (n: number) => { const at = need(n); return bytes.subarray(at, at + n); };
  const str = (n: number) => {
    try { return utf8.decode(take(n)); } catch { return fail('invalid UTF-8 string'); }
  };
  const latin1 = (b: Uint8Array) => {
    let s = '';
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
    return s;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: missing end of line');
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const longLE = (b: Uint8Array): number | bigint => {
    // Two's complement little-endian of any length (LONG1 / LONG4).
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const intText = (s: string): number | bigint | boolean => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (t === '01') return true; // protocol 0 spells bools as I01 / I00
    if (t === '00') return false;
    if (!/^[-+]?\d+$/.test(t)) fail(`bad integer literal ${JSON.stringify(s)}`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const global = (module: string, qualname: string) => opts.resolveGlobal(module, qualname);
  const callable = (f: unknown, args: unknown, how: string) => {
    if (!(f instanceof PyCallable)) fail(`${how} of something that is not a known callable`);
    if (!Array.isArray(args)) fail(`${how} arguments are not a tuple`);
    return (f as PyCallable).call(args as unknown[]);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof PyDict)) fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (d as PyDict).map.set(kv[i], kv[i + 1]);
  };
  const appendAll = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) fail('APPEND(S) on something that is not a list');
    for (const x of items) (l as unknown[]).push(x);
  };

  for (;;) {
    opAt = pos;
    op = u8();
    switch (op) {
      case 0x80: { const v = u8(); if (v > 5) fail(`unsupported protocol ${v}`); break; } // PROTO
      case 0x95: u64(); break; // FRAME: a length hint only
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longLE(take(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) fail('negative LONG4 length'); stack.push(longLE(take(n))); break; }
      case 0x49: stack.push(intText(line())); break; // INT
      case 0x4c: stack.push(intText(line())); break; // LONG
      case 0x47: stack.push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x46: { const s = line(); const v = Number(s); if (Number.isNaN(v) && !/nan/i.test(s)) fail(`bad float ${s}`); stack.push(v); break; }
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x54: { const n = i32(); if (n < 0) fail('negative BINSTRING length'); stack.push(latin1(take(n))); break; } // BINSTRING (py2 str)
      case 0x55: stack.push(latin1(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: { const a = pop(); stack.push([a]); break; } // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const x = pop(); appendAll(top(), [x]); break; } // APPEND
      case 0x65: { const items = popMark(); appendAll(top(), items); break; } // APPENDS
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) fail('ADDITEMS on a non-set'); for (const x of items) (s as Set<unknown>).add(x); break; }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x63: { const m = line(), n = line(); stack.push(global(m, n)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop(), m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(m as string, n as string));
        break;
      }
      case 0x52: { const args = pop(), f = pop(); stack.push(callable(f, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(), cls = pop(); stack.push(callable(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(), args = pop(), cls = pop();
        if (!(kwargs instanceof PyDict) || kwargs.map.size) fail('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(callable(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = top();
        if (obj instanceof PyObject || obj instanceof PyDict) obj.state = state;
        else fail('BUILD on a value that takes no state');
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a persistent loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id without a persistent loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(intText(line())), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(intText(line()));
        if (!memo.has(k)) fail(`memo key ${k} is not defined`);
        stack.push(memo.get(k));
        break;
      }
      default:
        fail(UNSUPPORTED[op] ? `opcode ${UNSUPPORTED[op]} is not supported` : 'unknown opcode');
    }
  }
}
