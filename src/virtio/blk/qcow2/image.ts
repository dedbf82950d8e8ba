// A qcow2 image (QEMU docs/interop/qcow2.txt, versions 2 and 3) as a virtio-blk BlockBackend, over
// an injected RandomAccessFile and an optional backing ImageReader. No Node, no DOM.
//
// Reads of unallocated clusters go to the backing image (zeroes past its end, or without one);
// a write to a cluster that is not yet the image's own allocates a host cluster and writes the
// whole cluster there: the guest's bytes plus the rest copied from the backing image (or zeroes).
//
// Crash consistency. `qemu-img check` counts a reference to a cluster whose refcount is too low
// as corruption, and a refcount without a reference as a leak (harmless). So every reference is
// made durable only after what it refers to and the refcount that accounts for it:
//  - data clusters are written before anything points to them;
//  - refcount increments only go to disk before the references they cover: dirty refcount blocks
//    are written and synced first at every metadata flush, then the dirty L2 tables, then (after
//    another sync, if new L2 tables were written) the L1 table;
//  - a new refcount block is written and synced before the refcount table points to it, a new
//    refcount table before the header points to it;
//  - a refcount is only decremented (discard, the old refcount table) once nothing on disk
//    points to the cluster any more, so a crash can leak clusters but never lose a reference.
// Metadata (L2 tables, refcount blocks, the L1 table) is cached and written back by flush(),
// which the guest's FLUSH reaches, or when the cache is full. Everything the guest wrote before a
// completed flush is durable; what it wrote after may be lost or leak clusters, as on a real disk.
//
// Requests from the device overlap (several run at once, each in chunks): every operation runs
// alone, in order, through one queue, so allocation and table updates never interleave.
//
// Compressed clusters are read through an injected decompressor (zlib only) and never written:
// a write to one copies it into a new, uncompressed cluster. Not implemented, refused with an
// error naming the feature: zstd compression (on access), encryption, external data files,
// extended L2 entries (at open, header.ts); writing to images with internal snapshots, or marked
// dirty (lazy refcounts not written back) or corrupt.

import type { BlockBackend } from "../backend.ts";
import { checkBackendRange, validateBlockId } from "../backend.ts";
import type { ImageReader, RandomAccessFile } from "./file.ts";
import { readClipped, readZeroFilled } from "./file.ts";
import { headerReadLength, parseQcow2Header, Qcow2FormatError, QCOW_PROBE_LENGTH, type Qcow2Header } from "./header.ts";
import {
  QCOW_HEADER_AUTOCLEAR_FEATURES,
  QCOW_HEADER_REFCOUNT_TABLE_OFFSET,
  QCOW_MAX_CLUSTER_BITS,
  QCOW_MIN_CLUSTER_BITS,
  QCOW_TABLE_ENTRY_SIZE,
  QCOW_MAX_REFTABLE_BYTES,
  QCOW_COMPRESSION_TYPE_ZLIB,
  QCOW_COMPRESSION_TYPE_ZSTD,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DIRTY,
} from "./spec.ts";
import {
  decodeL1Entry,
  decodeL2Entry,
  decodeRefcountTableEntry,
  encodeL1Entry,
  encodeL2Entry,
  getRefcount,
  refcountsPerBlock,
  setRefcount,
  type L2Mapping,
} from "./tables.ts";

/** Default memory for cached L2 tables, and the same again for refcount blocks. */
export const QCOW2_DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** GET_ID serial; printable ASCII, <= 20 bytes. */
  id?: string;
  /** The backing image (the host resolved the header's backing file name). */
  backing?: ImageReader;
  /** Names the image in error messages (its path). */
  name?: string;
  /** Bytes of L2 tables (and of refcount blocks) kept in memory. */
  cacheBytes?: number;
  /** Decompresses compressed clusters; without it they are refused when the guest reaches one. */
  inflate?: Qcow2Inflate;
}

/**
 * Decompresses one compressed cluster: raw deflate data (zlib, windowBits -12, as QEMU writes it;
 * trailing bytes after the stream are allowed) into exactly clusterSize bytes. Throws otherwise,
 * and never produces more than clusterSize bytes.
 */
export type Qcow2Inflate = (compressed: Uint8Array, clusterSize: number) => Uint8Array | Promise<Uint8Array>;

/** What the image did, for --stats and tests. */
export interface Qcow2Counters {
  /** Data clusters allocated by writes. */
  clustersAllocated: number;
  /** Allocations that copied the rest of the cluster from the backing image. */
  cowCopies: number;
  l2TablesAllocated: number;
  refcountBlocksAllocated: number;
  refcountTableGrowths: number;
  /** Clusters given back by discard (refcount decremented after the L2 change was durable). */
  clustersFreed: number;
  metadataFlushes: number;
}

/** Reads the header of a qcow2 image: the first cluster, parsed and checked. */
export async function readQcow2Header(file: RandomAccessFile): Promise<Qcow2Header> {
  // The smallest cluster holds the whole fixed header; the rest of the first cluster is read
  // once cluster_bits is known to be sane (parseQcow2Header refuses it otherwise).
  const probe = new Uint8Array(Math.min(file.size, 2 ** QCOW_MIN_CLUSTER_BITS));
  await readZeroFilled(file, 0, probe);
  if (probe.length < QCOW_PROBE_LENGTH) return parseQcow2Header(probe, file.size);
  const bits = new DataView(probe.buffer).getUint32(QCOW_PROBE_LENGTH - 4);
  const length = bits >= QCOW_MIN_CLUSTER_BITS && bits <= QCOW_MAX_CLUSTER_BITS ? Math.min(file.size, headerReadLength(bits)) : probe.length;
  const first = new Uint8Array(length);
  await readZeroFilled(file, 0, first);
  return parseQcow2Header(first, file.size);
}

interface CacheEntry {
  data: Uint8Array;
  dirty: boolean;
}

/** Cluster-sized tables by host offset, least recently used first. */
class TableCache {
  private readonly entries = new Map<number, CacheEntry>();
  constructor(readonly capacity: number) {}

  get(offset: number): Uint8Array | undefined {
    const entry = this.entries.get(offset);
    if (!entry) return undefined;
    this.entries.delete(offset);
    this.entries.set(offset, entry);
    return entry.data;
  }
  has(offset: number): boolean {
    return this.entries.has(offset);
  }
  put(offset: number, data: Uint8Array, dirty: boolean): void {
    this.entries.delete(offset);
    this.entries.set(offset, { data, dirty });
  }
  dirty(): [number, Uint8Array][] {
    return [...this.entries].filter(([, e]) => e.dirty).map(([offset, e]) => [offset, e.data]);
  }
  get anyDirty(): boolean {
    for (const e of this.entries.values()) if (e.dirty) return true;
    return false;
  }
  markClean(): void {
    for (const e of this.entries.values()) e.dirty = false;
  }
  /** Drops clean entries, oldest first, until one more fits; false if only dirty ones are left. */
  makeRoom(): boolean {
    if (this.entries.size < this.capacity) return true;
    for (const [offset, e] of this.entries) {
      if (!e.dirty) {
        this.entries.delete(offset);
        if (this.entries.size < this.capacity) return true;
      }
    }
    return this.entries.size < this.capacity;
  }
}

export class Qcow2Image implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  readonly id: string;
  readonly writeZeroesMayUnmap = false;
  readonly header: Qcow2Header;
  readonly counters: Qcow2Counters = {
    clustersAllocated: 0,
    cowCopies: 0,
    l2TablesAllocated: 0,
    refcountBlocksAllocated: 0,
    refcountTableGrowths: 0,
    clustersFreed: 0,
    metadataFlushes: 0,
  };

  private readonly name: string;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly refEntries: number;
  private readonly refOrder: number;
  private readonly l1: Uint8Array;
  private readonly l1View: DataView;
  private l1DirtyFrom = Infinity;
  private l1DirtyTo = -1;
  private reftable: Uint8Array;
  private reftableView: DataView;
  private reftableOffset: number;
  /** One past the last byte the file holds or that was allocated. */
  private end: number;
  /** Allocation resumes its search for a free cluster here (a cluster index). */
  private freeHint = 0;
  /** Clusters whose references were removed but not yet written: freed after the next sync. */
  private pendingFrees: number[] = [];
  private readonly l2Cache: TableCache;
  private readonly refCache: TableCache;
  private readonly inflate: Qcow2Inflate | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: string | undefined;
  private closed = false;

  private constructor(
    private readonly file: RandomAccessFile,
    header: Qcow2Header,
    l1: Uint8Array,
    reftable: Uint8Array,
    private readonly backing: ImageReader | undefined,
    options: Qcow2OpenOptions,
  ) {
    this.header = header;
    this.size = header.size;
    this.readOnly = options.readOnly ?? false;
    this.id = options.id ?? "";
    this.name = options.name ?? "qcow2 image";
    this.inflate = options.inflate;
    this.clusterSize = header.clusterSize;
    this.l2Entries = header.clusterSize / QCOW_TABLE_ENTRY_SIZE;
    this.refOrder = header.refcountOrder;
    this.refEntries = refcountsPerBlock(header.clusterSize, header.refcountOrder);
    this.l1 = l1;
    this.l1View = new DataView(l1.buffer, l1.byteOffset, l1.byteLength);
    this.reftable = reftable;
    this.reftableView = new DataView(reftable.buffer);
    this.reftableOffset = header.refcountTableOffset;
    this.end = file.size;
    const tables = Math.max(8, Math.floor((options.cacheBytes ?? QCOW2_DEFAULT_CACHE_BYTES) / header.clusterSize));
    this.l2Cache = new TableCache(tables);
    this.refCache = new TableCache(tables);
  }

  /**
   * Opens a qcow2 image whose header was read with readQcow2Header. Refuses (Qcow2FormatError)
   * what cannot be used as asked: a write open of an image marked dirty or corrupt or with
   * internal snapshots, or a backing file the header names but the host did not provide.
   */
  static async open(file: RandomAccessFile, header: Qcow2Header, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const idError = validateBlockId(options.id ?? "");
    if (idError) throw new Error(idError);
    const readOnly = options.readOnly ?? false;
    if (header.backingFile !== undefined && !options.backing) {
      throw new Qcow2FormatError(`the image has a backing file (${header.backingFile}) that was not opened`);
    }
    if (!readOnly) {
      if (header.incompatibleFeatures & QCOW2_INCOMPAT_CORRUPT) {
        throw new Qcow2FormatError("the image is marked corrupt; repair it with qemu-img check -r all, or attach it read-only");
      }
      if (header.incompatibleFeatures & QCOW2_INCOMPAT_DIRTY) {
        throw new Qcow2FormatError("the image is marked dirty (lazy refcounts not written back); repair it with qemu-img check -r all, or attach it read-only");
      }
      if (header.nbSnapshots > 0) {
        throw new Qcow2FormatError(`the image has ${header.nbSnapshots} internal snapshots, which Parley cannot write around; attach it read-only or remove them (qemu-img snapshot -d)`);
      }
    }
    const l1 = new Uint8Array(header.l1Size * QCOW_TABLE_ENTRY_SIZE);
    await readZeroFilled(file, header.l1TableOffset, l1);
    const reftable = new Uint8Array(header.refcountTableClusters * header.clusterSize);
    await readZeroFilled(file, header.refcountTableOffset, reftable);
    const image = new Qcow2Image(file, header, l1, reftable, options.backing, options);
    if (!readOnly && header.autoclearFeatures !== 0n) {
      // The spec: a writer must clear autoclear bits it does not maintain (bitmaps) before writing.
      const zero = new Uint8Array(8);
      await file.write(QCOW_HEADER_AUTOCLEAR_FEATURES, zero);
      await file.sync();
      header.autoclearFeatures = 0n;
    }
    return image;
  }

  // ---- BlockBackend ---------------------------------------------------------------------------

  read(offset: number, into: Uint8Array): Promise<void> {
    return this.serialize(false, offset, into.length, () => this.readRange(offset, into));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.serialize(true, offset, data.length, () => this.mutating(() => this.writeRange(offset, data)));
  }

  flush(): Promise<void> {
    return this.serialize(false, 0, 0, async () => {
      if (this.readOnly) return;
      await this.mutating(() => this.flushMetadata());
    });
  }

  discard(offset: number, length: number): Promise<void> {
    return this.serialize(true, offset, length, () => this.mutating(() => this.zeroRange(offset, length, true)));
  }

  writeZeroes(offset: number, length: number, _unmap: boolean): Promise<void> {
    return this.serialize(true, offset, length, () => this.mutating(() => this.zeroRange(offset, length, false)));
  }

  close(): Promise<void> {
    if (this.closed) return this.queue.then(() => undefined);
    this.closed = true;
    const done = this.queue.then(async () => {
      try {
        // A clean close leaves no dirty metadata, hence no leaks.
        if (!this.readOnly && this.failure === undefined) await this.flushMetadata();
      } finally {
        await this.file.close();
        await this.backing?.close();
      }
    });
    this.queue = done.catch(() => {});
    return done;
  }

  // ---- serialisation and failure --------------------------------------------------------------

  private serialize<T>(writing: boolean, offset: number, length: number, run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.closed) throw new Error(`${this.name} is closed`);
      if (writing && this.readOnly) throw new Error(`${this.name} is read-only`);
      checkBackendRange(this.size, offset, length);
      return run();
    });
    this.queue = result.catch(() => {});
    return result;
  }

  /**
   * Runs a change. Once one failed in the host's I/O, what the file holds is unknown: refuse
   * further changes. A Qcow2FormatError (a compressed or corrupt cluster met) leaves the image's
   * state as it was and only fails that request.
   */
  private async mutating(run: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) throw new Error(`${this.name}: an earlier write failed (${this.failure}); no more writes until it is reopened`);
    try {
      await run();
    } catch (e) {
      if (!(e instanceof Qcow2FormatError)) this.failure = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }

  // ---- guest data -----------------------------------------------------------------------------

  private async readRange(offset: number, into: Uint8Array): Promise<void> {
    const cs = this.clusterSize;
    for (let done = 0; done < into.length; ) {
      const guest = offset + done;
      const inCluster = guest % cs;
      const n = Math.min(cs - inCluster, into.length - done);
      const part = into.subarray(done, done + n);
      const mapping = await this.lookup(guest);
      switch (mapping.kind) {
        case "unallocated":
          if (this.backing) await readClipped(this.backing, guest, part);
          else part.fill(0);
          break;
        case "zero":
          part.fill(0);
          break;
        case "normal":
          await readZeroFilled(this.file, mapping.host + inCluster, part);
          break;
        case "compressed":
          part.set((await this.decompress(guest, mapping)).subarray(inCluster, inCluster + n));
          break;
      }
      done += n;
    }
  }

  private async writeRange(offset: number, data: Uint8Array): Promise<void> {
    const cs = this.clusterSize;
    for (let done = 0; done < data.length; ) {
      const guest = offset + done;
      const n = Math.min(cs - (guest % cs), data.length - done);
      await this.writeInCluster(guest, data.subarray(done, done + n));
      done += n;
    }
  }

  /** Writes data (within one guest cluster) at guest offset `guest`. */
  private async writeInCluster(guest: number, data: Uint8Array): Promise<void> {
    const cs = this.clusterSize;
    const inCluster = guest % cs;
    const { table, tableOffset, index } = await this.l2ForWrite(guest);
    const mapping = this.checkMapping(decodeL2Entry(this.l2Get(table, index), this.header.clusterBits), guest);
    if (mapping.kind === "normal") {
      if (!mapping.copied) await this.claimCopied(mapping.host, "data cluster");
      await this.file.write(mapping.host + inCluster, data);
      this.grew(mapping.host + inCluster + data.length);
      if (!mapping.copied) {
        this.l2Set(table, index, encodeL2Entry(mapping.host));
        this.l2Cache.put(tableOffset, table, true);
      }
      return;
    }
    // The whole cluster is written at once: the guest's bytes and, around them, what the cluster
    // read as before (backing data, the decompressed cluster, or zeroes).
    let cluster = new Uint8Array(cs);
    const clusterStart = guest - inCluster;
    if (data.length < cs && mapping.kind === "unallocated" && this.backing) {
      await readClipped(this.backing, clusterStart, cluster);
      this.counters.cowCopies++;
    } else if (data.length < cs && mapping.kind === "compressed") {
      cluster = (await this.decompress(guest, mapping)).slice();
      this.counters.cowCopies++;
    }
    cluster.set(data, inCluster);
    let host: number;
    if (mapping.kind === "zero" && mapping.host !== 0) {
      if (!mapping.copied) await this.claimCopied(mapping.host, "preallocated zero cluster");
      host = mapping.host;
    } else {
      host = await this.allocateCluster();
      this.counters.clustersAllocated++;
    }
    await this.file.write(host, cluster);
    this.grew(host + cs);
    this.l2Set(table, index, encodeL2Entry(host));
    this.l2Cache.put(tableOffset, table, true);
    if (mapping.kind === "compressed") this.pendingFrees.push(...this.compressedClusters(mapping));
  }

  /**
   * Makes [offset, offset + length) read as zeroes (writeZeroes), or lets it go (discard). Whole
   * clusters get the zero flag (version 3) or are deallocated; partial ones are written with
   * zeroes unless they already read as zeroes. Discard leaves partial clusters alone.
   */
  private async zeroRange(offset: number, length: number, discard: boolean): Promise<void> {
    const cs = this.clusterSize;
    for (let done = 0; done < length; ) {
      const guest = offset + done;
      const n = Math.min(cs - (guest % cs), length - done);
      done += n;
      const mapping = await this.lookup(guest);
      const readsZero = mapping.kind === "zero" || (mapping.kind === "unallocated" && !this.backing);
      if (n < cs) {
        if (!discard && !readsZero) await this.writeInCluster(guest, new Uint8Array(n));
        continue;
      }
      if (readsZero && !(discard && mapping.kind === "zero" && mapping.host !== 0)) continue;
      if (this.header.version === 2) {
        // No zero flag: only a discard may drop the cluster (the backing data may show again).
        if (discard) {
          if (mapping.kind === "normal" || mapping.kind === "compressed") await this.unmapCluster(guest, this.hostClusters(mapping), 0n);
        } else {
          await this.writeInCluster(guest, new Uint8Array(cs));
        }
        continue;
      }
      if (discard) {
        // Deallocate; with a backing image the cluster must not show the backing data again.
        const entry = this.backing ? encodeL2Entry(0, true) : 0n;
        await this.unmapCluster(guest, this.hostClusters(mapping), entry);
      } else if (mapping.kind === "compressed") {
        await this.unmapCluster(guest, this.hostClusters(mapping), encodeL2Entry(0, true));
      } else {
        // Keep the host cluster, if any, for later writes (a preallocated zero cluster).
        const host = mapping.kind === "normal" || mapping.kind === "zero" ? mapping.host : 0;
        const { table, tableOffset, index } = await this.l2ForWrite(guest);
        if (host !== 0 && mapping.kind === "normal" && !mapping.copied) await this.claimCopied(host, "data cluster");
        this.l2Set(table, index, encodeL2Entry(host, true));
        this.l2Cache.put(tableOffset, table, true);
      }
    }
  }

  /** Points a guest cluster's L2 entry at `entry` and frees `hosts` after the next sync. */
  private async unmapCluster(guest: number, hosts: number[], entry: bigint): Promise<void> {
    const { table, tableOffset, index } = await this.l2ForWrite(guest);
    this.l2Set(table, index, entry);
    this.l2Cache.put(tableOffset, table, true);
    this.pendingFrees.push(...hosts);
  }

  /** The host clusters whose refcounts a mapping holds (one count each). */
  private hostClusters(mapping: L2Mapping): number[] {
    if (mapping.kind === "compressed") return this.compressedClusters(mapping);
    if ((mapping.kind === "normal" || mapping.kind === "zero") && mapping.host !== 0) return [mapping.host];
    return [];
  }

  /**
   * A compressed cluster counts once in every host cluster its sectors touch (as QEMU frees it:
   * nb_csectors sectors from the sector holding the offset).
   */
  private compressedClusters(mapping: { host: number; sectors: number }): number[] {
    const cs = this.clusterSize;
    const start = mapping.host - (mapping.host % 512);
    const clusters: number[] = [];
    for (let c = Math.floor(start / cs); c <= Math.floor((start + mapping.sectors * 512 - 1) / cs); c++) clusters.push(c * cs);
    return clusters;
  }

  /** A compressed guest cluster's data: exactly one cluster, or a Qcow2FormatError. */
  private async decompress(guest: number, mapping: { host: number; sectors: number }): Promise<Uint8Array> {
    const cs = this.clusterSize;
    if (!this.inflate || this.header.compressionType !== QCOW_COMPRESSION_TYPE_ZLIB) {
      const what = this.header.compressionType === QCOW_COMPRESSION_TYPE_ZSTD ? "zstd-compressed clusters are" : "compressed clusters are";
      throw new Qcow2FormatError(`${this.name}: the cluster at guest offset ${guest} is compressed, and ${what} not supported (rewrite the image: qemu-img convert -O qcow2)`);
    }
    const length = mapping.sectors * 512 - (mapping.host % 512);
    if (mapping.host < cs || mapping.host >= this.end || this.fixedMetadataAt(mapping.host)) {
      throw new Qcow2FormatError(`${this.name}: the compressed cluster of guest offset ${guest} at ${mapping.host} lies outside the data area (corrupt image)`);
    }
    // Its last sectors may run past the end of the file; they read as zeroes.
    const compressed = new Uint8Array(length);
    await readZeroFilled(this.file, mapping.host, compressed);
    let data: Uint8Array;
    try {
      data = await this.inflate(compressed, cs);
    } catch (e) {
      throw new Qcow2FormatError(`${this.name}: the compressed cluster of guest offset ${guest} cannot be decompressed (${e instanceof Error ? e.message : String(e)})`);
    }
    if (data.length !== cs) throw new Qcow2FormatError(`${this.name}: the compressed cluster of guest offset ${guest} decompresses to ${data.length} bytes, not ${cs}`);
    return data;
  }

  // ---- L1 and L2 ------------------------------------------------------------------------------

  private l2Get(table: Uint8Array, index: number): bigint {
    return new DataView(table.buffer, table.byteOffset).getBigUint64(index * QCOW_TABLE_ENTRY_SIZE);
  }
  private l2Set(table: Uint8Array, index: number, entry: bigint): void {
    new DataView(table.buffer, table.byteOffset).setBigUint64(index * QCOW_TABLE_ENTRY_SIZE, entry);
  }

  /** The mapping of the guest cluster holding `guest`. */
  private async lookup(guest: number): Promise<L2Mapping> {
    const cluster = Math.floor(guest / this.clusterSize);
    const l1Index = Math.floor(cluster / this.l2Entries);
    const { offset } = decodeL1Entry(this.l1View.getBigUint64(l1Index * QCOW_TABLE_ENTRY_SIZE));
    if (offset === 0) return { kind: "unallocated" };
    const table = await this.loadTable(this.l2Cache, offset, "L2 table");
    return this.checkMapping(decodeL2Entry(this.l2Get(table, cluster % this.l2Entries), this.header.clusterBits), guest);
  }

  private checkMapping(mapping: L2Mapping, guest: number): L2Mapping {
    if ((mapping.kind === "normal" || mapping.kind === "zero") && mapping.host !== 0) {
      this.checkHostCluster(mapping.host, `the data cluster of guest offset ${guest}`);
    }
    return mapping;
  }

  /** The L2 table for a guest offset, allocating it (and fixing its "copied" bit) if needed. */
  private async l2ForWrite(guest: number): Promise<{ table: Uint8Array; tableOffset: number; index: number }> {
    const cluster = Math.floor(guest / this.clusterSize);
    const l1Index = Math.floor(cluster / this.l2Entries);
    const index = cluster % this.l2Entries;
    const l1Entry = decodeL1Entry(this.l1View.getBigUint64(l1Index * QCOW_TABLE_ENTRY_SIZE));
    if (l1Entry.offset !== 0) {
      const table = await this.loadTable(this.l2Cache, l1Entry.offset, "L2 table");
      if (!l1Entry.copied) {
        await this.claimCopied(l1Entry.offset, "L2 table");
        this.setL1(l1Index, l1Entry.offset);
      }
      return { table, tableOffset: l1Entry.offset, index };
    }
    // Cache room first: a flush to make room must not run between allocating and recording.
    await this.makeRoom(this.l2Cache);
    const tableOffset = await this.allocateCluster();
    const table = new Uint8Array(this.clusterSize);
    this.l2Cache.put(tableOffset, table, true);
    this.setL1(l1Index, tableOffset);
    this.counters.l2TablesAllocated++;
    return { table, tableOffset, index };
  }

  private setL1(index: number, offset: number): void {
    this.l1View.setBigUint64(index * QCOW_TABLE_ENTRY_SIZE, encodeL1Entry(offset));
    this.l1DirtyFrom = Math.min(this.l1DirtyFrom, index);
    this.l1DirtyTo = Math.max(this.l1DirtyTo, index);
  }

  /**
   * An entry without the "copied" bit: writing in place is right only if the cluster's refcount
   * is exactly one (the entry then gets the bit, as `qemu-img check` expects). A shared cluster
   * would need copy-on-write between snapshots, which write opens refuse.
   */
  private async claimCopied(host: number, what: string): Promise<void> {
    const refcount = await this.refcountOf(host / this.clusterSize);
    if (refcount !== 1) throw new Qcow2FormatError(`${this.name}: ${what} at ${host} has refcount ${refcount}, expected 1 (shared clusters are not supported)`);
  }

  private async loadTable(cache: TableCache, offset: number, what: string): Promise<Uint8Array> {
    const cached = cache.get(offset);
    if (cached) return cached;
    this.checkHostCluster(offset, what);
    await this.makeRoom(cache);
    const table = new Uint8Array(this.clusterSize);
    await readZeroFilled(this.file, offset, table);
    cache.put(offset, table, false);
    return table;
  }

  private async makeRoom(cache: TableCache): Promise<void> {
    if (cache.makeRoom()) return;
    await this.flushMetadata();
    cache.makeRoom();
  }

  /** Refuses a host offset that is unaligned, past the end or inside the header, L1 or refcount table. */
  private checkHostCluster(offset: number, what: string): void {
    const cs = this.clusterSize;
    if (offset % cs !== 0) throw new Qcow2FormatError(`${this.name}: ${what} at ${offset} is not cluster-aligned (corrupt image)`);
    if (offset >= this.end) throw new Qcow2FormatError(`${this.name}: ${what} at ${offset} lies past the end of the file (${this.end} bytes; truncated image?)`);
    const overlap = this.fixedMetadataAt(offset);
    if (overlap) throw new Qcow2FormatError(`${this.name}: ${what} at ${offset} overlaps ${overlap} (corrupt image)`);
  }

  private fixedMetadataAt(offset: number): string | undefined {
    const h = this.header;
    if (offset < this.clusterSize) return "the header";
    if (offset >= h.l1TableOffset && offset < h.l1TableOffset + this.l1.length) return "the L1 table";
    if (offset >= this.reftableOffset && offset < this.reftableOffset + this.reftable.length) return "the refcount table";
    return undefined;
  }

  private grew(end: number): void {
    if (end > this.end) this.end = end;
  }

  // ---- refcounts and allocation ---------------------------------------------------------------

  private get reftableEntries(): number {
    return this.reftable.length / QCOW_TABLE_ENTRY_SIZE;
  }

  private reftableEntry(index: number): number {
    return decodeRefcountTableEntry(this.reftableView.getBigUint64(index * QCOW_TABLE_ENTRY_SIZE));
  }

  private async refcountBlock(tableIndex: number): Promise<{ block: Uint8Array; offset: number } | undefined> {
    if (tableIndex >= this.reftableEntries) return undefined;
    const offset = this.reftableEntry(tableIndex);
    if (offset === 0) return undefined;
    return { block: await this.loadTable(this.refCache, offset, "refcount block"), offset };
  }

  private async refcountOf(cluster: number): Promise<number> {
    const found = await this.refcountBlock(Math.floor(cluster / this.refEntries));
    return found ? getRefcount(found.block, cluster % this.refEntries, this.refOrder) : 0;
  }

  /** Finds a free cluster, sets its refcount to 1 (in the cache) and returns its offset. */
  private async allocateCluster(): Promise<number> {
    const cs = this.clusterSize;
    for (let cluster = this.freeHint; ; ) {
      const tableIndex = Math.floor(cluster / this.refEntries);
      if (tableIndex >= this.reftableEntries) {
        await this.growRefcountTable(cluster);
        continue;
      }
      if (this.reftableEntry(tableIndex) === 0) await this.createRefcountBlock(tableIndex);
      const found = (await this.refcountBlock(tableIndex))!;
      const first = tableIndex * this.refEntries;
      const endCluster = Math.ceil(this.end / cs);
      for (let i = cluster - first; i < this.refEntries; i++) {
        if (getRefcount(found.block, i, this.refOrder) !== 0) {
          // Every cluster allocated since the open lies below `end`: a count past it came with
          // the file, and following such counts could scan a huge, corrupt table for ever.
          if (first + i >= endCluster) throw new Qcow2FormatError(`${this.name}: cluster ${(first + i) * cs} past the end of the file has a refcount (corrupt refcounts)`);
          continue;
        }
        const offset = (first + i) * cs;
        const overlap = this.fixedMetadataAt(offset) ?? (this.l2Cache.has(offset) || this.refCache.has(offset) ? "a cached table" : undefined);
        if (overlap) throw new Qcow2FormatError(`${this.name}: cluster ${offset} has refcount 0 but holds ${overlap} (corrupt refcounts)`);
        setRefcount(found.block, i, this.refOrder, 1);
        this.refCache.put(found.offset, found.block, true);
        this.freeHint = first + i + 1;
        this.grew(offset + cs);
        return offset;
      }
      cluster = first + this.refEntries;
    }
  }

  /**
   * A refcount block for a range no block covers yet. Every refcount in that range is 0, so the
   * block goes into the range's first cluster and counts itself. Written and synced before the
   * refcount table entry points to it.
   */
  private async createRefcountBlock(tableIndex: number): Promise<void> {
    const cs = this.clusterSize;
    const offset = tableIndex * this.refEntries * cs;
    const overlap = this.fixedMetadataAt(offset);
    if (overlap) throw new Qcow2FormatError(`${this.name}: ${overlap} lies in clusters that no refcount block counts (corrupt refcounts)`);
    await this.makeRoom(this.refCache);
    const block = new Uint8Array(cs);
    setRefcount(block, 0, this.refOrder, 1);
    await this.file.write(offset, block);
    this.grew(offset + cs);
    await this.file.sync();
    const entry = new Uint8Array(QCOW_TABLE_ENTRY_SIZE);
    new DataView(entry.buffer).setBigUint64(0, BigInt(offset));
    await this.file.write(this.reftableOffset + tableIndex * QCOW_TABLE_ENTRY_SIZE, entry);
    this.reftable.set(entry, tableIndex * QCOW_TABLE_ENTRY_SIZE);
    this.refCache.put(offset, block, false);
    this.counters.refcountBlocksAllocated++;
  }

  /**
   * The refcount table is full (cluster `from` and everything after it are counted by no block):
   * writes a larger table and the refcount blocks for its own clusters from `from` on, syncs,
   * points the header at it, syncs, and then frees the old table.
   */
  private async growRefcountTable(from: number): Promise<void> {
    const cs = this.clusterSize;
    const perBlock = this.refEntries;
    const oldClusters = this.reftable.length / cs;
    let tableClusters = Math.max(oldClusters * 2, Math.ceil(((Math.floor(from / perBlock) + 1) * QCOW_TABLE_ENTRY_SIZE) / cs));
    let blocks = 0;
    for (;;) {
      const last = Math.floor((from + blocks + tableClusters - 1) / perBlock);
      const needBlocks = last - Math.floor(from / perBlock) + 1;
      const needClusters = Math.max(tableClusters, Math.ceil(((last + 1) * QCOW_TABLE_ENTRY_SIZE) / cs));
      if (needBlocks === blocks && needClusters === tableClusters) break;
      blocks = needBlocks;
      tableClusters = needClusters;
    }
    if (tableClusters * cs > QCOW_MAX_REFTABLE_BYTES) {
      throw new Qcow2FormatError(`${this.name}: the image is full (its refcount table would exceed ${QCOW_MAX_REFTABLE_BYTES} bytes)`);
    }
    const used = blocks + tableClusters;
    for (let c = from; c < from + used; c++) {
      const overlap = this.fixedMetadataAt(c * cs);
      if (overlap) throw new Qcow2FormatError(`${this.name}: ${overlap} lies in clusters that no refcount block counts (corrupt refcounts)`);
    }
    const firstRange = Math.floor(from / perBlock);
    const table = new Uint8Array(tableClusters * cs);
    table.set(this.reftable);
    const tableView = new DataView(table.buffer);
    const newBlocks: [number, Uint8Array][] = [];
    for (let k = 0; k < blocks; k++) {
      const range = firstRange + k;
      const block = new Uint8Array(cs);
      for (let c = Math.max(from, range * perBlock); c < Math.min(from + used, (range + 1) * perBlock); c++) {
        setRefcount(block, c - range * perBlock, this.refOrder, 1);
      }
      const offset = (from + k) * cs;
      newBlocks.push([offset, block]);
      tableView.setBigUint64(range * QCOW_TABLE_ENTRY_SIZE, BigInt(offset));
    }
    const tableOffset = (from + blocks) * cs;
    for (const [offset, block] of newBlocks) await this.file.write(offset, block);
    await this.file.write(tableOffset, table);
    this.grew(tableOffset + table.length);
    await this.file.sync();
    const fields = new Uint8Array(12);
    const fieldsView = new DataView(fields.buffer);
    fieldsView.setBigUint64(0, BigInt(tableOffset));
    fieldsView.setUint32(8, tableClusters);
    await this.file.write(QCOW_HEADER_REFCOUNT_TABLE_OFFSET, fields);
    await this.file.sync();
    const oldOffset = this.reftableOffset;
    this.reftable = table;
    this.reftableView = tableView;
    this.reftableOffset = tableOffset;
    this.header.refcountTableOffset = tableOffset;
    this.header.refcountTableClusters = tableClusters;
    for (const [offset, block] of newBlocks) {
      await this.makeRoom(this.refCache);
      this.refCache.put(offset, block, false);
    }
    // Nothing on disk points to the old table any more.
    for (let c = 0; c < oldClusters; c++) await this.decrementRefcount(oldOffset / cs + c);
    this.counters.refcountTableGrowths++;
    this.counters.refcountBlocksAllocated += blocks;
  }

  private async decrementRefcount(cluster: number): Promise<void> {
    const found = await this.refcountBlock(Math.floor(cluster / this.refEntries));
    const index = cluster % this.refEntries;
    const refcount = found ? getRefcount(found.block, index, this.refOrder) : 0;
    if (!found || refcount === 0) throw new Qcow2FormatError(`${this.name}: freeing cluster ${cluster * this.clusterSize}, whose refcount is already 0 (corrupt refcounts)`);
    // A 64-bit count above 2^53 reads as MAX_SAFE_INTEGER (tables.ts) and is left as it is.
    if (this.refOrder < 6 || refcount !== Number.MAX_SAFE_INTEGER) setRefcount(found.block, index, this.refOrder, refcount - 1);
    this.refCache.put(found.offset, found.block, true);
    if (refcount === 1) this.freeHint = Math.min(this.freeHint, cluster);
  }

  // ---- write-back -----------------------------------------------------------------------------

  /**
   * Writes the cached metadata back in dependency order and makes everything durable:
   * refcount blocks, sync (data and refcounts before references), L2 tables, sync if the L1
   * table changed, L1 table, sync. Then applies the frees whose unmapping is now durable, and writes those refcounts.
   */
  private async flushMetadata(): Promise<void> {
    this.counters.metadataFlushes++;
    const refDirty = this.refCache.dirty();
    for (const [offset, block] of refDirty) await this.file.write(offset, block);
    this.refCache.markClean();
    if (refDirty.length > 0) await this.file.sync();
    const l2Dirty = this.l2Cache.dirty();
    for (const [offset, table] of l2Dirty) await this.file.write(offset, table);
    this.l2Cache.markClean();
    if (this.l1DirtyTo >= 0) {
      if (l2Dirty.length > 0) await this.file.sync();
      const from = this.l1DirtyFrom * QCOW_TABLE_ENTRY_SIZE;
      const to = (this.l1DirtyTo + 1) * QCOW_TABLE_ENTRY_SIZE;
      await this.file.write(this.header.l1TableOffset + from, this.l1.slice(from, to));
      this.l1DirtyFrom = Infinity;
      this.l1DirtyTo = -1;
    }
    await this.file.sync();
    const frees = this.pendingFrees;
    this.pendingFrees = [];
    if (frees.length === 0) return;
    for (const host of frees) {
      await this.decrementRefcount(host / this.clusterSize);
      this.counters.clustersFreed++;
    }
    // Lowered refcounts may go to disk now (nothing durable refers to those clusters); written
    // here so that a flushed image does not leak them.
    for (const [offset, block] of this.refCache.dirty()) await this.file.write(offset, block);
    this.refCache.markClean();
    await this.file.sync();
  }
}
