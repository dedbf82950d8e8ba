// Test support: a fake of the Origin Private File System as seen from a dedicated worker, for
// opfsOverlayStoreIn (src/host/web/overlay-store.ts).
import type { DirectoryHandleLike, FileHandleLike, SyncAccessHandleLike } from "../overlay-store.ts";

// Files are byte arrays that outlive the
// handles; a file has at most one open sync access handle (the browser's lock); `durable` is what
// survives a crash (updated by flush()).

export class FakeFile {
  bytes = new Uint8Array(0);
  durable = new Uint8Array(0);
  locked = false;
  flushes = 0;
}

class FakeSyncAccessHandle implements SyncAccessHandleLike {
  private closed = false;
  constructor(private readonly file: FakeFile) {}
  private live(): FakeFile {
    if (this.closed) throw new DOMException("handle closed", "InvalidStateError");
    return this.file;
  }
  read(buffer: Uint8Array, options: { at?: number } = {}): number {
    const file = this.live();
    const at = options.at ?? 0;
    const n = Math.max(0, Math.min(buffer.length, file.bytes.length - at));
    buffer.set(file.bytes.subarray(at, at + n));
    return n;
  }
  write(buffer: Uint8Array, options: { at?: number } = {}): number {
    const file = this.live();
    const at = options.at ?? 0;
    if (at + buffer.length > file.bytes.length) this.resize(at + buffer.length);
    file.bytes.set(buffer, at);
    return buffer.length;
  }
  private resize(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.file.bytes.subarray(0, size));
    this.file.bytes = next;
  }
  truncate(size: number): void {
    this.live();
    this.resize(size);
  }
  getSize(): number {
    return this.live().bytes.length;
  }
  flush(): void {
    const file = this.live();
    file.durable = file.bytes.slice();
    file.flushes++;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.locked = false;
  }
}

export class FakeDirectory implements DirectoryHandleLike {
  readonly dirs = new Map<string, FakeDirectory>();
  readonly files = new Map<string, FakeFile>();
  async getDirectoryHandle(name: string, options: { create?: boolean } = {}): Promise<FakeDirectory> {
    let dir = this.dirs.get(name);
    if (!dir) {
      if (!options.create) throw new DOMException(name, "NotFoundError");
      dir = new FakeDirectory();
      this.dirs.set(name, dir);
    }
    return dir;
  }
  async getFileHandle(name: string, options: { create?: boolean } = {}): Promise<FileHandleLike> {
    let file = this.files.get(name);
    if (!file) {
      if (!options.create) throw new DOMException(name, "NotFoundError");
      file = new FakeFile();
      this.files.set(name, file);
    }
    const f = file;
    return {
      async createSyncAccessHandle() {
        if (f.locked) throw new DOMException("file is locked", "NoModificationAllowedError");
        f.locked = true;
        return new FakeSyncAccessHandle(f);
      },
    };
  }
  /** After a crash only flushed bytes remain. */
  crash(): void {
    for (const file of this.files.values()) {
      file.bytes = file.durable.slice();
      file.locked = false;
    }
    for (const dir of this.dirs.values()) dir.crash();
  }
}
