// Control-flow discovery for the translator: which instructions of a code page to translate,
// how they are cut into regions and grouped into wasm functions, and the budget bounds that keep
// instruction counts exact. The page emitter (page-emitter.ts) lays the result out as wasm.
//
// Regions. The page's control-flow graph (instructions, fall-through and static branch edges) is
// cut into single-entry regions (see partition): each region starts at an entry, and a region
// contains at most one loop, whose header is its entry. Entries are where control comes in from
// outside the translation (the interpreter, other pages, returns from calls, the instruction
// after a system instruction the interpreter ran) and every loop header: after any exit from
// inside a loop the interpreter then comes back in at the next iteration. Within a region, code
// is laid out in a topological order of the graph without back edges, so forward branches are
// `br` out of wasm blocks ending at their targets, back edges a `br` to the region's wasm loop.
//
// Functions. Consecutive regions are grouped into functions of up to `functionSize`
// instructions (see group): a function has a br_table at its start selecting the entry by pc,
// and control passes to a later region of the same function by a plain branch, to an earlier
// one back through that br_table (a loop around it). Going to another function is a tail call.
// Regions that loop through each other are kept in one function (up to 4 x functionSize).
//
// Exactness. Instructions are counted per segment (a run laid out consecutively that nothing
// jumps into): its length is taken from $left where it starts. At every entry the function
// leaves unless $left covers the longest run possible before the next entry or exit (runBound).
import * as O from "../opcodes.ts";
import type { Label } from "./wasm-emitter.ts";
import { Kind, fallsThrough, kindOf, lenOf, opOf, rdOf, regUse, resumesAfter, type DecodedPage } from "./instructions.ts";

/**
 * Which offsets of the page to translate from: the instructions the interpreter executed
 * (`executed(offset)`) that are not simply reached by falling through from an executed one, and
 * those control was seen arriving at from elsewhere (`wanted(offset)`).
 */
export function findRoots(page: DecodedPage, executed: (offset: number) => boolean, wanted?: (offset: number) => boolean): number[] {
  const roots: number[] = [];
  for (let off = 0; off < 4096; off += 2) {
    if (!executed(off)) continue;
    if (wanted?.(off)) {
      roots.push(off);
      continue;
    }
    let reached = false;
    for (let back = 2; back <= 4; back += 2) {
      const prev = off - back;
      if (prev < 0 || !executed(prev)) continue;
      const w = page.word(prev);
      if (lenOf(w) === back && fallsThrough(opOf(w))) reached = true;
    }
    if (!reached) roots.push(off);
  }
  return roots;
}

/** A wasm block or loop of a function body, over positions in the function's order [start, close). */
export interface Interval {
  start: number; // opens in front of this position (-1: before the entry br_table)
  close: number; // closes in front of this position
  loop: boolean;
  label: Label;
}

/** The analysed code of one page: positions are the translated instructions in address order. */
export class ControlFlow {
  // Per parcel (offset / 2)
  readonly visited = new Uint8Array(2048);
  readonly entry = new Uint8Array(2048);
  readonly pos = new Int32Array(2048).fill(-1); // position of the instruction there
  // Per position (the translated instructions in address order)
  starts: number[] = [];
  words: number[] = [];
  private succ: number[][] = []; // successors of each position (see successors)
  regionOf: Int32Array = new Int32Array(0); // region (index into regionEntry) of each position
  regionEntry: number[] = []; // entry position of each region
  regionOrder: number[][] = []; // each region's positions in emission order (entry first)
  rank: Int32Array = new Int32Array(0); // index of each position in its region's order
  funcOfRegion: Int32Array = new Int32Array(0); // function of each region
  funcRegions: number[][] = []; // regions of each function, in order
  funcOrder: number[][] = []; // each function's positions in emission order
  fpos: Int32Array = new Int32Array(0); // index of each position in its function's order
  segLeft: Int32Array = new Int32Array(0); // instructions of the segment from here on (incl.)
  segStartHere: Uint8Array = new Uint8Array(0);
  runBound: Int32Array = new Int32Array(0); // longest run from here to an entry or exit
  blockAt: (Interval | undefined)[] = []; // block closing in front of a position (forward target)
  loopAt: (Interval | undefined)[] = []; // loop at a region's entry

  constructor(
    readonly page: DecodedPage,
    private readonly executed: ((offset: number) => boolean) | undefined,
    private readonly functionSize: number,
  ) {}

  /** Finds and lays out the code reachable from `roots`; false when there is none. */
  analyze(roots: number[]): boolean {
    if (!this.discover(roots)) return false;
    this.partition();
    this.group();
    this.segments();
    return true;
  }

  // ---- 1. instructions reachable from the roots, and the entries --------------------------
  private discover(roots: number[]): boolean {
    const { page, visited, entry, executed } = this;
    const work: number[] = [];
    const add = (off: number, isEntry: boolean) => {
      if (off < 0 || off >= 4096 || (off & 1) !== 0) return;
      if (isEntry) entry[off >> 1] = 1;
      if (!visited[off >> 1]) work.push(off);
    };
    // Code the interpreter never ran is left out (control leaves to the interpreter there),
    // which keeps translations, and V8's compile work, to what actually runs.
    const follow = (t: number) => executed === undefined || (t >= 0 && t < 4096 && executed(t));
    for (const r of roots) add(r, true);
    while (work.length) {
      let off = work.pop()!;
      while (off < 4096 && !visited[off >> 1]) {
        visited[off >> 1] = 1;
        const w = page.word(off);
        const op = opOf(w);
        const len = lenOf(w);
        const kind = kindOf(op, page.imm(off));
        if (kind === Kind.Branch) {
          const t = off + page.imm(off);
          if (follow(t)) add(t, false);
        }
        if (kind === Kind.Jal) {
          const t = off + page.imm(off);
          if (follow(t)) add(t, false);
          if (op === O.OP_JAL && follow(off + len)) add(off + len, true); // a call returns here through JALR
          break;
        }
        if (kind === Kind.Jalr) {
          if (rdOf(w) !== 0 && follow(off + len)) add(off + len, true);
          break;
        }
        if (kind === Kind.Exit) {
          if (resumesAfter(op) && follow(off + len)) add(off + len, true); // where the interpreter comes back
          break;
        }
        off += len;
        if (!follow(off)) break;
      }
    }
    for (let p = 0; p < 2048; p++) {
      if (!visited[p]) continue;
      this.pos[p] = this.starts.length;
      this.starts.push(p * 2);
      this.words.push(page.word(p * 2));
    }
    // The graph does not change from here on: each position's successors, computed once.
    this.succ = this.starts.map((_, i) => {
      const f = this.fallThroughOf(i);
      const t = this.targetOf(i);
      if (f < 0) return t < 0 ? [] : [t];
      return t < 0 || t === f ? [f] : [t, f];
    });
    return this.starts.length > 0;
  }

  /** Layout position of a page offset, or -1 when it is not translated. */
  posOf(off: number): number {
    return off >= 0 && off < 4096 && (off & 1) === 0 ? this.pos[off >> 1] : -1;
  }
  isEntry(i: number): boolean {
    return this.entry[this.starts[i] >> 1] === 1;
  }
  /** Static in-page target of the branch or jump at position i, as a position, or -1. */
  targetOf(i: number): number {
    const kind = kindOf(opOf(this.words[i]));
    if (kind !== Kind.Branch && kind !== Kind.Jal) return -1;
    return this.posOf(this.starts[i] + this.page.imm(this.starts[i]));
  }
  /** Position of the next instruction in memory when control falls through to it, or -1. */
  fallThroughOf(i: number): number {
    const w = this.words[i];
    const op = opOf(w);
    if (!fallsThrough(op) || kindOf(op, this.page.imm(this.starts[i])) === Kind.Exit) return -1;
    return this.posOf(this.starts[i] + lenOf(w));
  }

  // ---- 2. regions and their order --------------------------------------------------------------
  //
  // The control-flow graph (nodes: instructions, edges: fall-through and static branch targets)
  // is cut into regions, each entered at one entry only, and each a function. Control passing to
  // another region is a tail call. A region may contain one loop, whose header is the region's
  // entry (its back edges go to the entry); any other cycle makes its header an entry, starting a
  // region of its own. So every loop header is an entry: after any exit from inside a loop (end of
  // the run's budget, a fault, a system instruction) the interpreter comes back in at the next
  // iteration instead of running the rest of the loop itself. A node reached from two regions
  // becomes an entry too. Within a region, code is laid out in a topological order of the graph
  // without the back edges (not address order), so a rotated loop (entered by a jump into its
  // middle, as GCC likes to emit them) becomes a wasm loop starting at that jump's target.
  private partition(): void {
    const n = this.starts.length;
    this.entry[this.starts[0] >> 1] = 1; // nothing reaches the lowest instruction by falling through
    const regionOf = new Int32Array(n);
    const color = new Uint8Array(n);
    for (let changed = true; changed; ) {
      changed = false;
      // Claim nodes for the regions of the entries, in address order (the entries found shared
      // are added after the pass, so that stale claims do not cascade).
      regionOf.fill(-1);
      this.regionEntry = [];
      const shared: number[] = [];
      for (let e = 0; e < n; e++) {
        if (!this.isEntry(e)) continue;
        const r = this.regionEntry.length;
        this.regionEntry.push(e);
        regionOf[e] = r;
        const work = [e];
        while (work.length) {
          const i = work.pop()!;
          for (const j of this.successors(i)) {
            if (this.isEntry(j)) continue;
            if (regionOf[j] === -1) {
              regionOf[j] = r;
              work.push(j);
            } else if (regionOf[j] !== r) {
              shared.push(j);
            }
          }
        }
      }
      for (const j of shared) this.entry[this.starts[j] >> 1] = 1;
      if (shared.length) {
        changed = true;
        continue;
      }
      // A cycle that does not go through its region's entry: its header becomes an entry.
      color.fill(0);
      for (const e of this.regionEntry) {
        const r = regionOf[e];
        const stack: [number, number][] = [[e, 0]];
        color[e] = 1;
        while (stack.length && !changed) {
          const top = stack[stack.length - 1];
          const succ = this.successors(top[0]);
          if (top[1] >= succ.length) {
            color[top[0]] = 2;
            stack.pop();
            continue;
          }
          const j = succ[top[1]++];
          if (regionOf[j] !== r || j === e) continue;
          if (color[j] === 1) {
            this.entry[this.starts[j] >> 1] = 1;
            changed = true;
          } else if (color[j] === 0) {
            color[j] = 1;
            stack.push([j, 0]);
          }
        }
        if (changed) break;
      }
    }
    this.regionOf = regionOf;

    // Order each region: reverse post-order of a depth-first search that visits the branch
    // target before the fall-through successor, so the fall-through successor tends to come next.
    this.rank = new Int32Array(n);
    this.regionOrder = this.regionEntry.map((e) => {
      const r = regionOf[e];
      const post: number[] = [];
      const seen = new Uint8Array(n);
      const stack: [number, number][] = [[e, 0]];
      seen[e] = 1;
      while (stack.length) {
        const top = stack[stack.length - 1];
        const succ = this.successors(top[0]);
        if (top[1] >= succ.length) {
          post.push(top[0]);
          stack.pop();
          continue;
        }
        const j = succ[top[1]++];
        if (regionOf[j] !== r || j === e || seen[j]) continue;
        seen[j] = 1;
        stack.push([j, 0]);
      }
      const order = post.reverse();
      order.forEach((i, k) => (this.rank[i] = k));
      return order;
    });

  }

  /** Successor positions of position i within the translation (fall-through first, then target). */
  successors(i: number): readonly number[] {
    return this.succ[i];
  }

  /**
   * Groups consecutive regions (in address order) into functions of at most `functionSize`
   * instructions. Within a function, control passes to a later region by a plain branch (the
   * function has an entry for each of its regions, through a br_table at its start, and guest
   * registers stay valid in locals), to an earlier one back through that br_table; to another
   * function by a tail call.
   * Fewer, bigger functions mean fewer transitions; the size limit keeps V8's optimizing compile
   * of each function fast (its cost grows faster than linearly). Regions that loop through each
   * other (nested loops, a loop whose header is not its only way back) stay in one function up
   * to four times that size: split across two, every iteration would pay two tail calls.
   */
  private group(): void {
    this.funcOfRegion = new Int32Array(this.regionEntry.length);
    this.funcRegions = [];
    const sizes = this.regionOrder.map((order) => order.length);
    const atomEnd = this.loopSpans(sizes, this.functionSize * LOOP_FUNCTION_SIZE_FACTOR);
    let size = Infinity;
    // Regions r..atomEnd[r] go to one function: a group of regions that loop through each other
    // starts a function of its own unless it fits in the current one, as a single region does.
    for (let r = 0; r < this.regionEntry.length; r = atomEnd[r] + 1) {
      let n = 0;
      for (let k = r; k <= atomEnd[r]; k++) n += sizes[k];
      if (size + n > this.functionSize) {
        this.funcRegions.push([]);
        size = 0;
      }
      for (let k = r; k <= atomEnd[r]; k++) {
        this.funcRegions[this.funcRegions.length - 1].push(k);
        this.funcOfRegion[k] = this.funcRegions.length - 1;
      }
      size += n;
    }
    this.fpos = new Int32Array(this.starts.length);
    this.funcOrder = this.funcRegions.map((regions) => {
      const order = regions.flatMap((r) => this.regionOrder[r]);
      order.forEach((i, k) => (this.fpos[i] = k));
      return order;
    });

    // Wasm structure, in positions of the function's order: a block for every entry, closing
    // at it (the br_table and forward branches from other regions land there); a loop over
    // [entry, last back edge] for a region whose entry has back edges; a block closing at every
    // other node jumped to forward (except by falling through to the next node laid out).
    const n = this.starts.length;
    this.blockAt = new Array(n);
    this.loopAt = new Array(n);
    for (const e of this.regionEntry) this.blockAt[e] = { start: -1, close: this.fpos[e], loop: false, label: 0 };
    for (let r = 0; r < this.regionOrder.length; r++) {
      const order = this.regionOrder[r];
      const e = order[0];
      for (const i of order) {
        for (const j of this.successors(i)) {
          if (this.regionOf[j] !== r) continue;
          if (j === e) {
            const loop = (this.loopAt[e] ??= { start: this.fpos[e], close: 0, loop: true, label: 0 });
            loop.close = Math.max(loop.close, this.fpos[i] + 1);
          } else if (this.fpos[j] !== this.fpos[i] + 1 || j !== this.fallThroughOf(i)) {
            const block = (this.blockAt[j] ??= { start: this.fpos[i], close: this.fpos[j], loop: false, label: 0 });
            block.start = Math.min(block.start, this.fpos[i]);
          }
        }
      }
    }
  }

  /**
   * For each region, the last region of the run of consecutive regions (in address order) that
   * must share its function: the span from the first to the last region of each cycle of the
   * region graph (its strongly connected components of more than one region), spans that overlap
   * merged, each at most `cap` instructions (a longer one is left to the plain size limit).
   * atomEnd[r] = r for a region outside any such span, and for every region inside one but its first.
   */
  private loopSpans(sizes: number[], cap: number): Int32Array {
    const regions = this.regionEntry.length;
    const atomEnd = Int32Array.from({ length: regions }, (_, r) => r);
    if (regions < 2) return atomEnd;
    // Region graph: r -> the regions its instructions branch or fall into.
    const next: number[][] = Array.from({ length: regions }, () => []);
    for (let i = 0; i < this.starts.length; i++) {
      const from = this.regionOf[i];
      for (const j of this.successors(i)) {
        const to = this.regionOf[j];
        if (to !== from && !next[from].includes(to)) next[from].push(to);
      }
    }
    const component = stronglyConnected(next);
    const first = new Int32Array(regions).fill(-1);
    const last = new Int32Array(regions).fill(-1);
    for (let r = 0; r < regions; r++) {
      const c = component[r];
      if (first[c] < 0) first[c] = r;
      last[c] = r;
    }
    // Spans in order of their first region; overlapping ones merged.
    const spans: [number, number][] = [];
    for (let c = 0; c < regions; c++) if (first[c] >= 0 && last[c] > first[c]) spans.push([first[c], last[c]]);
    spans.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const span of spans) {
      const top = merged[merged.length - 1];
      if (top !== undefined && span[0] <= top[1]) top[1] = Math.max(top[1], span[1]);
      else merged.push([span[0], span[1]]);
    }
    for (const [lo, hi] of merged) {
      let total = 0;
      for (let r = lo; r <= hi; r++) total += sizes[r];
      if (total <= cap) atomEnd[lo] = hi;
    }
    return atomEnd;
  }

  /**
   * The wasm blocks and loops of function f in opening order. A block that starts inside
   * another interval and closes after it must open where that one opens; going by closing
   * position, every interval closing earlier is final when a block is looked at. Loops open at
   * their entry and never move: nothing enters a region but at its entry.
   */
  intervalsOf(f: number): Interval[] {
    const order = this.funcOrder[f];
    const list: Interval[] = [];
    for (const i of order) {
      const b = this.blockAt[i];
      if (b) list.push(b);
      const l = this.loopAt[i];
      if (l) list.push(l);
    }
    list.sort((x, y) => x.close - y.close);
    const minStartClosingAt = new Int32Array(order.length + 1).fill(order.length + 1);
    for (const iv of list) {
      if (!iv.loop) {
        let s = iv.start;
        for (;;) {
          let m = s;
          for (let p = Math.max(s + 1, 0); p < iv.close; p++) if (minStartClosingAt[p] < m) m = minStartClosingAt[p];
          if (m === s) break;
          s = m;
        }
        iv.start = s;
      }
      if (iv.start < minStartClosingAt[iv.close]) minStartClosingAt[iv.close] = iv.start;
    }
    // By start, the longer (outer) first; a block outside a loop of equal extent.
    list.sort((x, y) => x.start - y.start || y.close - x.close || Number(x.loop) - Number(y.loop));
    return list;
  }

  /** The wasm label that takes control from position i to position t (same function), if any. */
  labelFor(i: number, t: number): Label | undefined {
    if (this.regionOf[t] === this.regionOf[i]) {
      return this.isEntry(t) ? this.loopAt[t]!.label : this.blockAt[t]!.label;
    }
    if (this.funcOfRegion[this.regionOf[t]] === this.funcOfRegion[this.regionOf[i]] && this.fpos[t] > this.fpos[i]) {
      return this.blockAt[t]!.label; // a later region's entry
    }
    return undefined;
  }

  // ---- 3. segments and budget bounds ----------------------------------------------------------
  private segments(): void {
    const n = this.starts.length;
    this.segLeft = new Int32Array(n);
    this.segStartHere = new Uint8Array(n);
    this.runBound = new Int32Array(n);
    for (const order of this.funcOrder) {
      // A segment: consecutive nodes of the order, each falling through to the next, no label.
      let count = 0;
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        const kind = kindOf(opOf(this.words[i]), this.page.imm(this.starts[i]));
        const next = k + 1 < order.length ? order[k + 1] : -1;
        const endsAfter =
          next < 0 || kind === Kind.Branch || kind === Kind.Jal || kind === Kind.Jalr || kind === Kind.Exit ||
          this.fallThroughOf(i) !== next || this.isLabel(next);
        if (endsAfter) count = 0;
        this.segLeft[i] = ++count;
      }
      for (let k = 0; k < order.length; k++) this.segStartHere[order[k]] = k === 0 || this.segLeft[order[k - 1]] === 1 ? 1 : 0;
    }
    for (const order of this.regionOrder) {
      // The budget is checked at the entry only: there the function leaves unless the budget
      // covers the longest run of instructions possible before it leaves or comes back to the
      // entry; the region without its back edges is a DAG, laid out in topological order.
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        let longest = 0;
        for (const j of this.successors(i)) {
          if (this.regionOf[j] === this.regionOf[i] && j !== order[0]) longest = Math.max(longest, this.runBound[j]);
        }
        this.runBound[i] = 1 + longest;
      }
    }
  }
  /** Control arrives at position i other than by falling through from the node laid out before it. */
  isLabel(i: number): boolean {
    return this.isEntry(i) || this.blockAt[i] !== undefined;
  }

  /** Registers read before being written on some path from the region's entry (liveness). */
  liveIn(r: number): number {
    const order = this.regionOrder[r];
    const live = new Int32Array(order.length);
    // Reverse topological order; a second pass carries what the back edges to the entry need.
    for (let pass = 0; pass < 2; pass++) {
      for (let k = order.length - 1; k >= 0; k--) {
        const i = order[k];
        let out = 0;
        for (const j of this.successors(i)) if (this.regionOf[j] === r) out |= live[this.rank[j]];
        const use = regUse(opOf(this.words[i]), this.words[i]);
        live[k] = use.reads | (out & ~use.writes);
      }
    }
    return live[0];
  }
}

/** How much bigger than the size limit a function may grow to keep a group of looping regions whole. */
const LOOP_FUNCTION_SIZE_FACTOR = 4;

/**
 * Strongly connected components of a directed graph given as successor lists (Tarjan's
 * algorithm, iterative): for each node, its component, named by one of the component's nodes.
 */
export function stronglyConnected(next: readonly (readonly number[])[]): Int32Array {
  const n = next.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const component = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] >= 0) continue;
    const frames: [number, number][] = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (frames.length) {
      const frame = frames[frames.length - 1];
      const v = frame[0];
      if (frame[1] < next[v].length) {
        const w = next[v][frame[1]++];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          frames.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v], index[w]);
        continue;
      }
      frames.pop();
      if (frames.length) {
        const parent = frames[frames.length - 1][0];
        low[parent] = Math.min(low[parent], low[v]);
      }
      if (low[v] === index[v]) {
        for (;;) {
          const w = stack.pop()!;
          onStack[w] = 0;
          component[w] = v;
          if (w === v) break;
        }
      }
    }
  }
  return component;
}
