//! The admin API's encrypted request bodies (the server decrypts them with the admin's secret key).
//!
//! Layout, learned from madmin-go's `EncryptData` and the `sio` stream format it uses:
//!
//! ```text
//! salt (32) | algorithm id (1) | nonce prefix (8) | fragments
//! ```
//!
//! The key is derived from the admin's secret key and the salt. The plaintext is cut into fragments
//! of 16 KiB, each sealed with AES-256-GCM under the nonce `prefix || little-endian u32 sequence
//! number`. Every fragment's associated data is one flag byte (0x80 on the last fragment, 0x00
//! before) and the tag of an empty message sealed under sequence number 0; data fragments start at
//! sequence 1. A body ends with exactly one final fragment, which may be empty.
//!
//! We send algorithm 0x02 (PBKDF2-SHA256, 8,192 rounds, then AES-256-GCM), which every server
//! accepts next to the Argon2id variants: Argon2id as madmin uses it fills 64 MiB per call, twice
//! the operator's whole memory budget, for a body that travels inside TLS anyway.

use std::num::NonZeroU32;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::AdminError;

const SALT_LEN: usize = 32;
const NONCE_PREFIX_LEN: usize = 8;
const FRAGMENT: usize = 1 << 14;
const TAG_LEN: usize = 16;
/// madmin's id for PBKDF2-SHA256 + AES-256-GCM.
pub const PBKDF2_AES_GCM: u8 = 0x02;
const PBKDF2_ROUNDS: u32 = 8192;
const FINAL: u8 = 0x80;

/// `data` encrypted for the server, with the admin's secret key as the password.
pub fn encrypt(password: &str, data: &[u8]) -> Result<Vec<u8>, AdminError> {
    let random = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut prefix = [0u8; NONCE_PREFIX_LEN];
    random
        .fill(&mut salt)
        .and_then(|()| random.fill(&mut prefix))
        .map_err(|_| AdminError::Encrypt("no random numbers from the system".into()))?;
    seal(password, &salt, &prefix, data)
}

/// [`encrypt`] with the random parts given: the format, testable against known answers.
fn seal(
    password: &str,
    salt: &[u8; SALT_LEN],
    prefix: &[u8; NONCE_PREFIX_LEN],
    data: &[u8],
) -> Result<Vec<u8>, AdminError> {
    let key = key(password, salt)?;
    let nonce = |seq: u32| {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
        n[NONCE_PREFIX_LEN..].copy_from_slice(&seq.to_le_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let sealing = |seq: u32, flag: u8, ad_tag: &[u8], plain: &[u8], out: &mut Vec<u8>| {
        let mut ad = Vec::with_capacity(1 + TAG_LEN);
        ad.push(flag);
        ad.extend_from_slice(ad_tag);
        let mut fragment = plain.to_vec();
        key.seal_in_place_append_tag(nonce(seq), Aad::from(ad), &mut fragment)
            .map_err(|_| AdminError::Encrypt("sealing a fragment failed".into()))?;
        out.extend_from_slice(&fragment);
        Ok::<(), AdminError>(())
    };
    // The tag of nothing under sequence 0 binds every fragment to this stream.
    let ad_tag = key
        .seal_in_place_separate_tag(nonce(0), Aad::empty(), &mut [])
        .map_err(|_| AdminError::Encrypt("sealing the stream header failed".into()))?;
    let fragments = data.len().div_ceil(FRAGMENT).max(1);
    let mut out =
        Vec::with_capacity(SALT_LEN + 1 + NONCE_PREFIX_LEN + data.len() + fragments * TAG_LEN);
    out.extend_from_slice(salt);
    out.push(PBKDF2_AES_GCM);
    out.extend_from_slice(prefix);
    let mut rest = data;
    let mut seq: u32 = 1;
    // A fragment is sealed as non-final only when more data follows it.
    while rest.len() > FRAGMENT {
        let (chunk, tail) = rest.split_at(FRAGMENT);
        sealing(seq, 0x00, ad_tag.as_ref(), chunk, &mut out)?;
        rest = tail;
        seq = seq
            .checked_add(1)
            .ok_or_else(|| AdminError::Encrypt("body too large".into()))?;
    }
    sealing(seq, FINAL, ad_tag.as_ref(), rest, &mut out)?;
    Ok(out)
}

fn key(password: &str, salt: &[u8]) -> Result<LessSafeKey, AdminError> {
    let mut key = [0u8; 32];
    let rounds = NonZeroU32::new(PBKDF2_ROUNDS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut key,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &key)
        .map_err(|_| AdminError::Encrypt("AES-256-GCM key setup failed".into()))?;
    Ok(LessSafeKey::new(unbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens what [`seal`] wrote, following the format description above independently of it.
    fn open(password: &str, sealed: &[u8]) -> Vec<u8> {
        let (salt, rest) = sealed.split_at(SALT_LEN);
        assert_eq!(rest[0], PBKDF2_AES_GCM);
        let (prefix, mut body) = rest[1..].split_at(NONCE_PREFIX_LEN);
        let key = key(password, salt).unwrap();
        let nonce = |seq: u32| {
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(prefix);
            n[8..].copy_from_slice(&seq.to_le_bytes());
            Nonce::assume_unique_for_key(n)
        };
        let tag = key
            .seal_in_place_separate_tag(nonce(0), Aad::empty(), &mut [])
            .unwrap();
        let mut plain = Vec::new();
        let mut seq = 1;
        loop {
            let last = body.len() <= FRAGMENT + TAG_LEN;
            let take = body.len().min(FRAGMENT + TAG_LEN);
            let mut ad = vec![if last { FINAL } else { 0 }];
            ad.extend_from_slice(tag.as_ref());
            let mut fragment = body[..take].to_vec();
            let opened = key
                .open_in_place(nonce(seq), Aad::from(ad), &mut fragment)
                .expect("authentic fragment");
            plain.extend_from_slice(opened);
            body = &body[take..];
            seq += 1;
            if last {
                return plain;
            }
        }
    }

    #[test]
    fn bodies_of_every_fragment_count_round_trip_and_end_in_one_final_fragment() {
        for len in [
            0,
            1,
            100,
            FRAGMENT - 1,
            FRAGMENT,
            FRAGMENT + 1,
            3 * FRAGMENT,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = encrypt("admin-secret", &data).unwrap();
            let fragments = len.div_ceil(FRAGMENT).max(1);
            assert_eq!(sealed.len(), 41 + len + fragments * TAG_LEN, "length {len}");
            assert_eq!(open("admin-secret", &sealed), data, "length {len}");
        }
    }

    #[test]
    fn the_same_input_never_encrypts_the_same_way_twice() {
        assert_ne!(encrypt("k", b"x").unwrap(), encrypt("k", b"x").unwrap());
    }
}
