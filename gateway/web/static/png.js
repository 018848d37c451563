// A small PNG encoder. The mask must keep exact values in every channel,
// including the colour of fully transparent pixels, which canvas.toBlob loses
// to premultiplied alpha; so the page writes the file itself and lets the
// browser's CompressionStream do the zlib part.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as PNG chunks use it. */
export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const CHANNELS = { 0: 1, 2: 3, 4: 2, 6: 4 };

function chunk(type, body) {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

async function zlib(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encodes 8-bit pixels as a PNG.
 * @param {number} width
 * @param {number} height
 * @param {0|2|4|6} colorType PNG colour type: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA
 * @param {Uint8Array|Uint8ClampedArray} pixels rows of width × channels bytes
 * @returns {Promise<Blob>}
 */
export async function encodePNG(width, height, colorType, pixels) {
  const ch = CHANNELS[colorType];
  if (!ch) throw new Error(`unsupported PNG colour type ${colorType}`);
  if (!(width > 0 && height > 0) || pixels.length !== width * height * ch) {
    throw new Error(`want ${width}×${height}×${ch} bytes, have ${pixels.length}`);
  }
  const stride = width * ch;
  // Each row gets the "Up" filter: masks are mostly rows equal to the one
  // above, which then deflate to almost nothing.
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = y * stride;
    raw[o] = y === 0 ? 0 : 2;
    if (y === 0) {
      raw.set(pixels.subarray(0, stride), 1);
    } else {
      for (let x = 0; x < stride; x++) raw[o + 1 + x] = (pixels[row + x] - pixels[row - stride + x]) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", ihdr), chunk("IDAT", await zlib(raw)), chunk("IEND", new Uint8Array(0))], {
    type: "image/png",
  });
}
