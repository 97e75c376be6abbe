//! Throughput of the symmetric national crypto over 1 MiB, to put beside `openssl speed -evp`
//! (BENCHMARKS.md): `cargo bench -p codecs --bench symmetric`.

use codecs::crypto::{sm3, sm4};
use codecs::mac;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const MIB: usize = 1024 * 1024;
const KEY: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];
const IV: [u8; 16] = [0u8; 16];

fn one_mib() -> Vec<u8> {
    (0..MIB).map(|i| (i % 251) as u8).collect()
}

fn symmetric(c: &mut Criterion) {
    let data = one_mib();
    let mut group = c.benchmark_group("symmetric_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    group.sample_size(20);

    group.bench_function("sm4_cbc_encrypt_pkcs7", |b| {
        b.iter(|| sm4::cbc_encrypt(&KEY, &IV, black_box(&data), sm4::Padding::Pkcs7))
    });
    let ciphertext = sm4::cbc_encrypt(&KEY, &IV, &data, sm4::Padding::None).unwrap_or_default();
    group.bench_function("sm4_cbc_decrypt_nopad", |b| {
        b.iter(|| sm4::cbc_decrypt(&KEY, &IV, black_box(&ciphertext), sm4::Padding::None))
    });
    group.bench_function("sm3_digest", |b| b.iter(|| sm3::digest(black_box(&data))));
    group.bench_function("hmac_sm3", |b| b.iter(|| sm3::hmac(&KEY, black_box(&data))));
    group.bench_function("iso9797_m2_mac", |b| {
        b.iter(|| mac::iso9797_m2_mac(&KEY, black_box(&data)))
    });
    group.finish();
}

criterion_group!(benches, symmetric);
criterion_main!(benches);
