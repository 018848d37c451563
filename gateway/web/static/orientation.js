// EXIF orientation of JPEG files. Browsers show a photo upright by its EXIF
// orientation, so the mask is painted over the upright image; a server that
// reads the raw pixels would see it sideways. The page finds such photos and
// uploads an upright copy, so what is sent is what the user painted on.

/**
 * The EXIF orientation (1 to 8) of a JPEG, from its first bytes; 1 when the
 * file is not a JPEG or has no orientation.
 * @param {ArrayBuffer} buf the start of the file (the EXIF block comes first)
 * @returns {number}
 */
export function jpegOrientation(buf) {
  const v = new DataView(buf);
  if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return 1;
  let off = 2;
  while (off + 4 <= v.byteLength) {
    const marker = v.getUint16(off);
    if ((marker & 0xff00) !== 0xff00) return 1;
    // Image data starts: metadata comes before it or not at all.
    if (marker === 0xffda || marker === 0xffd9) return 1;
    const len = v.getUint16(off + 2);
    if (len < 2) return 1;
    if (marker === 0xffe1 && len >= 16 && off + 10 <= v.byteLength && v.getUint32(off + 4) === 0x45786966 && v.getUint16(off + 8) === 0) {
      return tiffOrientation(v, off + 10, Math.min(v.byteLength, off + 2 + len));
    }
    off += 2 + len;
  }
  return 1;
}

function tiffOrientation(v, start, end) {
  if (start + 8 > end) return 1;
  const order = v.getUint16(start);
  const le = order === 0x4949;
  if (!le && order !== 0x4d4d) return 1;
  if (v.getUint16(start + 2, le) !== 42) return 1;
  const ifd = start + v.getUint32(start + 4, le);
  if (ifd + 2 > end) return 1;
  const n = v.getUint16(ifd, le);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return 1;
    if (v.getUint16(e, le) === 0x0112) {
      const o = v.getUint16(e + 8, le);
      return o >= 1 && o <= 8 ? o : 1;
    }
  }
  return 1;
}

/**
 * Returns the file as is, or an upright JPEG copy when its EXIF orientation
 * turns or mirrors it.
 * @param {File} file
 * @returns {Promise<{file: File, turned: boolean}>}
 */
export async function uprightFile(file) {
  if (!/^image\/jpe?g$/i.test(file.type) && !/\.jpe?g$/i.test(file.name)) return { file, turned: false };
  const orientation = jpegOrientation(await file.slice(0, 1 << 17).arrayBuffer());
  if (orientation === 1) return { file, turned: false };
  const bmp = await createImageBitmap(file, { imageOrientation: "from-image" });
  try {
    const canvas = new OffscreenCanvas(bmp.width, bmp.height);
    canvas.getContext("2d").drawImage(bmp, 0, 0);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.95 });
    return { file: new File([blob], file.name, { type: "image/jpeg", lastModified: file.lastModified }), turned: true };
  } finally {
    bmp.close();
  }
}
