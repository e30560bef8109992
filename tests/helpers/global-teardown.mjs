export default async function globalTeardown() {
  await globalThis.__TENFHIR_PGLITE__?.close();
}
