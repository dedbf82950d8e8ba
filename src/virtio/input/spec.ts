// Numbers and layouts of the virtio input device (virtio spec 1.3, 5.8), and the few Linux evdev
// codes (include/uapi/linux/input-event-codes.h, input.h) that its events and bitmaps are made of:
// virtio-input carries evdev events unchanged, so the spec defers to those definitions.

// ---- Virtqueues (spec 5.8.2) ---------------------------------------------------------------------
/** Device to driver: input events. */
export const VIRTIO_INPUT_EVENTQ = 0;
/** Driver to device: status (LED) events. */
export const VIRTIO_INPUT_STATUSQ = 1;

// ---- Device configuration layout (spec 5.8.4) ----------------------------------------------------
/** enum virtio_input_config_select: what the union `u` reports. */
export const VIRTIO_INPUT_CFG_UNSET = 0x00;
export const VIRTIO_INPUT_CFG_ID_NAME = 0x01;
export const VIRTIO_INPUT_CFG_ID_SERIAL = 0x02;
export const VIRTIO_INPUT_CFG_ID_DEVIDS = 0x03;
export const VIRTIO_INPUT_CFG_PROP_BITS = 0x10;
export const VIRTIO_INPUT_CFG_EV_BITS = 0x11;
export const VIRTIO_INPUT_CFG_ABS_INFO = 0x12;

/**
 * struct virtio_input_config: u8 select; u8 subsel; u8 size; u8 reserved[5]; then the union
 * (char string[128] | u8 bitmap[128] | struct virtio_input_absinfo | struct virtio_input_devids).
 */
export const VirtioInputConfigOffset = {
  select: 0,
  subsel: 1,
  size: 2,
  reserved: 3,
  u: 8,
} as const;
/** Bytes of the union `u`: the largest answer a select can give. */
export const VIRTIO_INPUT_CONFIG_UNION_SIZE = 128;
/** Bytes of struct virtio_input_config. */
export const VIRTIO_INPUT_CONFIG_SIZE = VirtioInputConfigOffset.u + VIRTIO_INPUT_CONFIG_UNION_SIZE;
/** struct virtio_input_devids: le16 bustype, vendor, product, version. */
export const VIRTIO_INPUT_DEVIDS_SIZE = 8;

// ---- Events (spec 5.8.6) -------------------------------------------------------------------------
/** struct virtio_input_event: le16 type; le16 code; le32 value. */
export const VIRTIO_INPUT_EVENT_SIZE = 8;

export interface VirtioInputEvent {
  type: number;
  code: number;
  /** Signed 32-bit (evdev's __s32 value). */
  value: number;
}

/** The 8 bytes of one event, little-endian as the spec requires. Pure. */
export function encodeInputEvent(event: VirtioInputEvent): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_INPUT_EVENT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, event.type, true);
  view.setUint16(2, event.code, true);
  view.setInt32(4, event.value, true);
  return bytes;
}

/** Reads one event from (at least) 8 bytes. Pure. */
export function decodeInputEvent(bytes: Uint8Array): VirtioInputEvent {
  if (bytes.length < VIRTIO_INPUT_EVENT_SIZE) throw new RangeError(`a virtio_input_event is ${VIRTIO_INPUT_EVENT_SIZE} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_INPUT_EVENT_SIZE);
  return { type: view.getUint16(0, true), code: view.getUint16(2, true), value: view.getInt32(4, true) };
}

// ---- Linux evdev codes (input-event-codes.h, input.h) ------------------------------------------
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_LED = 0x11;
export const EV_REP = 0x14;
export const SYN_REPORT = 0;
export const REP_DELAY = 0x00;
export const REP_PERIOD = 0x01;
export const LED_NUML = 0x00;
export const LED_CAPSL = 0x01;
export const LED_SCROLLL = 0x02;
/** LED_MAX + 1: LED codes are below this. */
export const LED_CNT = 0x10;
/** BUS_VIRTUAL (input.h): the bus type of a virtual input device. */
export const BUS_VIRTUAL = 0x06;

/** Key values of an EV_KEY event. */
export const KEY_RELEASED = 0;
export const KEY_PRESSED = 1;
export const KEY_REPEATED = 2;

export const KEY_ESC = 1;
export const KEY_KPDOT = 83;
export const KEY_F11 = 87;
export const KEY_F12 = 88;
export const KEY_KPENTER = 96;
export const KEY_RIGHTALT = 100;
export const KEY_HOME = 102;
export const KEY_LEFTCTRL = 29;
export const KEY_LEFTALT = 56;
export const KEY_DELETE = 111;
export const KEY_LEFTMETA = 125;
export const KEY_COMPOSE = 127;
