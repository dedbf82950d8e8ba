// The two small interfaces the qcow2 code works over, injected by the host (Node:
// src/host/node/disk-image.ts): a random-access file for the image itself, and a read-only image
// reader for the backing file (another qcow2 image, or a raw file of any length).

/** A file opened for positional I/O. */
export interface RandomAccessFile {
  /** Length in bytes when it was opened (the qcow2 code tracks growth itself). */
  readonly size: number;
  /** Reads up to into.length bytes at offset; returns how many were read (fewer only at end of file). */
  read(offset: number, into: Uint8Array): Promise<number>;
  /** Writes all of data at offset, extending the file if needed. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes every completed write durable (fdatasync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A read-only disk image: what a backing file is to its overlay. */
export interface ImageReader {
  /** Virtual size in bytes (any length; reads past it are the caller's business). */
  readonly size: number;
  /** Fills into with the bytes at [offset, offset + into.length), inside [0, size). */
  read(offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Reads into fully; the part past the end of the file reads as zeroes. */
export async function readZeroFilled(file: RandomAccessFile, offset: number, into: Uint8Array): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const n = await file.read(offset + done, into.subarray(done));
    if (n === 0) break;
    done += n;
  }
  into.fill(0, done);
}

/** Reads [offset, offset + into.length) of an image; the part past its size reads as zeroes. */
export async function readClipped(image: ImageReader, offset: number, into: Uint8Array): Promise<void> {
  const inside = Math.max(0, Math.min(into.length, image.size - offset));
  if (inside > 0) await image.read(offset, into.subarray(0, inside));
  into.fill(0, inside);
}

/** A raw image file as a read-only ImageReader (a backing file, or the base of snapshot=on). */
export class RawImageReader implements ImageReader {
  readonly size: number;
  constructor(private readonly file: RandomAccessFile) {
    this.size = file.size;
  }
  read(offset: number, into: Uint8Array): Promise<void> {
    return readZeroFilled(this.file, offset, into);
  }
  close(): Promise<void> {
    return this.file.close();
  }
}
