//! FUNCTION DUMP / RESTORE payloads in Redis's format: for each library
//! the function opcode (245) and its code as an RDB string, then the RDB
//! version (2 bytes, little endian) and a CRC-64 (Jones, reflected,
//! little endian) of everything before it.

/// RDB opcode of a function library (`RDB_OPCODE_FUNCTION2`).
const OPCODE_FUNCTION: u8 = 245;
/// The pre-release function opcode, which Redis refuses too.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// RDB version written (Redis 7.2).
pub const RDB_VERSION: u16 = 11;

/// CRC-64 as Redis computes it (Jones polynomial, reflected, init 0).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 reflected
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

/// Builds a payload holding the given library codes.
pub fn dump<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION);
        put_len(&mut out, code.len());
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Why a payload was refused (the error reply, code included).
pub type PayloadError = &'static str;

const BAD_PAYLOAD: PayloadError = "ERR DUMP payload version or checksum are wrong";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// An RDB length; `Err(kind)` for the special encodings.
    fn len(&mut self) -> Option<Result<usize, u8>> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Ok((b & 0x3f) as usize),
            1 => Ok((((b & 0x3f) as usize) << 8) | self.byte()? as usize),
            2 => match b {
                0x80 => {
                    let s = self.take(4)?;
                    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
                }
                0x81 => {
                    let s = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    Ok(usize::try_from(u64::from_be_bytes(a)).ok()?)
                }
                _ => return None,
            },
            _ => Err(b & 0x3f),
        })
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Ok(n) => Some(self.take(n)?.to_vec()),
            Err(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => {
                let s = self.take(2)?;
                Some(i16::from_le_bytes([s[0], s[1]]).to_string().into_bytes())
            }
            Err(2) => {
                let s = self.take(4)?;
                Some(
                    i32::from_le_bytes([s[0], s[1], s[2], s[3]])
                        .to_string()
                        .into_bytes(),
                )
            }
            Err(3) => {
                let clen = self.len()?.ok()?;
                let ulen = self.len()?.ok()?;
                let data = self.take(clen)?;
                lzf_decompress(data, ulen)
            }
            Err(_) => None,
        }
    }
}

/// LZF decompression (the RDB string compression), refusing any output
/// that does not come out exactly `ulen` bytes long.
fn lzf_decompress(input: &[u8], ulen: usize) -> Option<Vec<u8>> {
    // The payload is bounded by the request size; LZF expands at most
    // ~ 264/3 bytes per input byte, so cap the claim by that.
    if ulen > input.len().saturating_mul(90).saturating_add(64) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(ulen);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            out.extend_from_slice(input.get(i..i + n)?);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..len + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > ulen {
            return None;
        }
    }
    (out.len() == ulen).then_some(out)
}

/// Checks version and checksum, then returns the library codes.
pub fn parse(payload: &[u8]) -> Result<Vec<Vec<u8>>, PayloadError> {
    if payload.len() < 10 {
        return Err(BAD_PAYLOAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(BAD_PAYLOAD);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(BAD_PAYLOAD);
    }
    let mut r = Reader { buf: body, pos: 0 };
    let mut codes = Vec::new();
    while r.pos < body.len() {
        match r.byte() {
            Some(OPCODE_FUNCTION) => {}
            Some(OPCODE_FUNCTION_PRE_GA) => return Err("ERR Pre-GA function format not supported"),
            _ => return Err("ERR given type is not a function"),
        }
        match r.string() {
            Some(code) => codes.push(code),
            None => return Err("ERR Failed loading library"),
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn round_trip() {
        let codes: Vec<&[u8]> = vec![b"#!lua name=a\n", &[b'x'; 300]];
        let p = dump(codes.iter().copied());
        assert_eq!(
            parse(&p).unwrap(),
            vec![codes[0].to_vec(), codes[1].to_vec()]
        );
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn lzf() {
        // literal "abc" then a back reference of length 3 at distance 3.
        let data = [2, b'a', b'b', b'c', 0x20, 2];
        assert_eq!(lzf_decompress(&data, 6).unwrap(), b"abcabc");
        assert!(lzf_decompress(&data, 5).is_none());
    }
}
