//! What a transaction's signature costs, and whether batch verification could lower it
//! (issue 16).
//!
//! The chain's rule is `verify_strict` (cofactorless, refusing small-order keys and `R`).
//! ed25519-dalek's `verify_batch` is not the same rule: it checks one random combination of
//! the equations, cofactorless, with weights drawn deterministically from the inputs, and it
//! lets small-order and mixed-order points through. For a batch to accept exactly what
//! `verify_strict` accepts, every key `A` and every `R` must be shown torsion-free (then each
//! equation's residue lies in the prime-order group, where a random combination vanishes only
//! if every residue does); points that are not go to `verify_strict` one by one, and so does
//! the whole batch when it fails (to name the bad signatures). The groups below measure each
//! piece per signature:
//!
//! - `sign`, `keygen`: the dev door's server-side work;
//! - `verify_strict`: the rule, one by one;
//! - `verify_batch/N`: dalek's batch alone, N signatures;
//! - `torsion_free (vartime)`: `[ℓ]P == 0` for one point, the check the batch would need twice
//!   per signature (a fresh key and a fresh `R` in every create);
//! - `strict_equivalent_batch/N`: the batch plus both checks, the cheapest exact batch.
//!
//! `cargo bench -p sparkid-ledger --bench signatures`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// `[ℓ]P == 0`, in variable time (the inputs are public): `[ℓ-1]P + P`, since a `Scalar`
/// cannot hold ℓ itself.
fn torsion_free(point: &EdwardsPoint) -> bool {
    let minus_one = -Scalar::ONE;
    let l_minus_one =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&minus_one, point, &Scalar::ZERO);
    (l_minus_one + point).is_identity()
}

/// The batch that accepts exactly what `verify_strict` accepts (see the module's comment).
fn strict_equivalent_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Vec<bool> {
    let mut batched = Vec::with_capacity(signatures.len());
    let mut alone = Vec::new();
    for (i, (signature, key)) in signatures.iter().zip(keys).enumerate() {
        let r = CompressedEdwardsY(signature.r_bytes().to_owned()).decompress();
        let clean = r.is_some_and(|r| torsion_free(&r)) && torsion_free(&key.to_edwards());
        if clean {
            batched.push(i);
        } else {
            alone.push(i);
        }
    }
    let mut ok = vec![false; signatures.len()];
    let m: Vec<&[u8]> = batched.iter().map(|&i| messages[i]).collect();
    let s: Vec<Signature> = batched.iter().map(|&i| signatures[i]).collect();
    let k: Vec<VerifyingKey> = batched.iter().map(|&i| keys[i]).collect();
    if ed25519_dalek::verify_batch(&m, &s, &k).is_ok() {
        for &i in &batched {
            ok[i] = true;
        }
    } else {
        alone.extend(batched);
    }
    for i in alone {
        ok[i] = keys[i].verify_strict(messages[i], &signatures[i]).is_ok();
    }
    ok
}

fn signatures(c: &mut Criterion) {
    let n_max = 1024;
    let keys: Vec<SigningKey> = (0..n_max)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    // About the size of a create's signed bytes.
    let messages: Vec<Vec<u8>> = (0..n_max)
        .map(|i| format!("{i:0>700}").into_bytes())
        .collect();
    let sigs: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let vkeys: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();

    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| keys[0].sign(black_box(&messages[0]))));
    g.bench_function("keygen", |b| {
        let mut i = 0u8;
        b.iter(|| {
            i = i.wrapping_add(1);
            SigningKey::from_bytes(black_box(&[i; 32])).verifying_key()
        })
    });
    g.bench_function("verify_strict", |b| {
        b.iter(|| vkeys[0].verify_strict(black_box(&messages[0]), &sigs[0]))
    });
    g.bench_function("torsion_free (vartime)", |b| {
        let point = vkeys[0].to_edwards();
        b.iter(|| torsion_free(black_box(&point)))
    });
    g.bench_function("decompress a key", |b| {
        let bytes = vkeys[0].to_bytes();
        b.iter(|| VerifyingKey::from_bytes(black_box(&bytes)))
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    for n in [64usize, 1024] {
        let m: Vec<&[u8]> = messages[..n].iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("verify_strict each", n), &n, |b, &n| {
            b.iter(|| {
                (0..n)
                    .filter(|&i| vkeys[i].verify_strict(m[i], &sigs[i]).is_ok())
                    .count()
            })
        });
        g.bench_with_input(BenchmarkId::new("verify_batch", n), &n, |b, &n| {
            b.iter(|| ed25519_dalek::verify_batch(&m, &sigs[..n], &vkeys[..n]).is_ok())
        });
        g.bench_with_input(
            BenchmarkId::new("strict_equivalent_batch", n),
            &n,
            |b, &n| b.iter(|| strict_equivalent_batch(&m, &sigs[..n], &vkeys[..n])),
        );
    }
    g.finish();
}

/// The exact batch must agree with `verify_strict` on a signature whose key has a torsion
/// component: strict refuses it (cofactorless, the residue is a nonzero torsion point) unless
/// the residue happens to vanish.
fn agreement_on_mixed_order_keys() {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use sha2::{Digest, Sha512};
    let mut disagreements = 0;
    for (t, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
        let a = Scalar::from(1234567u64 + t as u64);
        let point = a * ED25519_BASEPOINT_POINT + torsion;
        let key = VerifyingKey::from_bytes(&point.compress().to_bytes()).expect("a curve point");
        let message = b"mixed order";
        let r = Scalar::from(99u64 + t as u64);
        let big_r = (r * ED25519_BASEPOINT_POINT).compress();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(key.as_bytes())
                .chain_update(message),
        );
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(big_r.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        let signature = Signature::from_bytes(&bytes);
        let strict = key.verify_strict(message, &signature).is_ok();
        let exact = strict_equivalent_batch(&[message], &[signature], &[key])[0];
        if strict != exact {
            disagreements += 1;
        }
    }
    assert_eq!(
        disagreements, 0,
        "the exact batch disagrees with verify_strict"
    );
}

fn checks(_: &mut Criterion) {
    agreement_on_mixed_order_keys();
}

criterion_group!(benches, checks, signatures);
criterion_main!(benches);
