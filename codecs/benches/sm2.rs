//! SM2 sign and verify throughput, compared in BENCHMARKS.md with `openssl speed sm2`.
//!
//! Run: `cargo bench -p codecs --bench sm2`.

use codecs::crypto::sm2::{self, PrivateKey, DEFAULT_ID};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn sm2_benches(c: &mut Criterion) {
    let Ok(key) = PrivateKey::generate() else {
        eprintln!("OS random source unavailable: SM2 benchmarks skipped");
        return;
    };
    let public = key.public_key();
    // `openssl speed sm2` signs and verifies a 20-byte digest-sized input; a short message keeps
    // the comparison about the curve operations, not SM3 throughput.
    let message = [0x5Au8; 20];
    let Ok(signature) = sm2::sign(&key, DEFAULT_ID, &message) else {
        eprintln!("SM2 signing failed: SM2 benchmarks skipped");
        return;
    };

    let mut group = c.benchmark_group("sm2");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter(|| sm2::sign(black_box(&key), DEFAULT_ID, black_box(&message)))
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            sm2::verify(
                black_box(&public),
                DEFAULT_ID,
                black_box(&message),
                black_box(&signature),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, sm2_benches);
criterion_main!(benches);
