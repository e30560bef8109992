// FHIR date/dateTime/instant values as [low, high] instants by precision (search.html#date):
// "2013-01-14" is the whole day, "2013-01" the whole month, a dateTime without seconds the whole minute.
const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export interface DateRange {
  low: string;
  high: string;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Parses a FHIR date-ish string into its instant range, or undefined when it is not a valid date. */
export function dateRange(value: string): DateRange | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  if (!mo) return { low: iso(Date.UTC(year, 0, 1)), high: iso(Date.UTC(year + 1, 0, 1) - 1) };
  const month = Number(mo) - 1;
  if (month < 0 || month > 11) return undefined;
  if (!d) return { low: iso(Date.UTC(year, month, 1)), high: iso(Date.UTC(year, month + 1, 1) - 1) };
  const day = Number(d);
  if (day < 1 || day > new Date(Date.UTC(year, month + 1, 0)).getUTCDate()) return undefined;
  if (!h) return { low: iso(Date.UTC(year, month, day)), high: iso(Date.UTC(year, month, day + 1) - 1) };
  if (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 60)) return undefined;
  if (tz && tz !== 'Z' && (Number(tz.slice(1, 3)) > 14 || Number(tz.slice(4, 6)) > 59)) return undefined;
  // A time without a zone is read as UTC (the server's zone).
  const offsetMin = !tz || tz === 'Z' ? 0 : (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  const base = Date.UTC(year, month, day, Number(h), Number(mi), s ? Number(s) : 0) - offsetMin * 60000;
  if (Number.isNaN(base)) return undefined;
  if (!s) return { low: iso(base), high: iso(base + 60000 - 1) };
  if (frac) {
    const ms = Math.floor(Number(frac) * 1000);
    return { low: iso(base + ms), high: iso(base + ms) };
  }
  return { low: iso(base), high: iso(base + 999) };
}
