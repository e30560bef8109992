// Narrative.div rules (narrative.html#xhtml): txt-1 (a well-formed XHTML <div> in the XHTML namespace, holding only the
// basic HTML 4 formatting elements of chapters 7-11 and 15, <a>, images and style attributes: no scripts, event
// attributes, forms, frames or objects) and txt-2 (the div has some non-whitespace content: text or an <img>).
// One pass over the string; a single problem (the first one found) is reported per div.

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** The elements HL7 allows in a narrative (HTML 4 chapters 7-11 and 15 without 9.4, plus a, img, map/area). */
const ALLOWED = new Set([
  'div', 'p', 'br', 'hr', 'span', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'img', 'map', 'area',
  'b', 'i', 'em', 'strong', 'small', 'big', 'tt', 'sub', 'sup', 'code', 'samp', 'kbd', 'var', 'dfn', 'cite', 'abbr', 'acronym',
  'q', 'blockquote', 'address', 'bdo', 'pre',
  'ul', 'ol', 'li', 'dl', 'dt', 'dd',
  'table', 'caption', 'colgroup', 'col', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td',
]);

/** Elements without content in HTML, which XHTML still closes (<br/>). */
const VOID = new Set(['br', 'hr', 'img', 'col', 'area']);

/** Elements that run or embed active content: refused as unsafe rather than merely not allowed. */
const ACTIVE = new Set(['script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet']);

export interface NarrativeProblem {
  code: string;
  message: string;
}

const NAME = /[A-Za-z_][-A-Za-z0-9_.:]*/y;
const ATTRIBUTE = /\s+([^\s=/>"'<]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
const TAG_END = /\s*(\/?)>/y;
const CLOSE_TAG = /<\/([A-Za-z_][-A-Za-z0-9_.:]*)\s*>/y;
const ENTITY = /&(?:#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});/y;

function malformed(message: string): NarrativeProblem {
  return { code: 'NARRATIVE_MALFORMED', message: `txt-1: the narrative is not well-formed XHTML: ${message}` };
}

function unsafe(message: string): NarrativeProblem {
  return { code: 'NARRATIVE_UNSAFE', message: `txt-1: the narrative contains active content: ${message}` };
}

function notAllowed(message: string): NarrativeProblem {
  return { code: 'NARRATIVE_CONTENT_NOT_ALLOWED', message: `txt-1: ${message}` };
}

/** An attribute value as a browser would read it as a URL: entities decoded, whitespace and controls dropped. */
function normalizeUrlish(value: string): string {
  const decoded = value.includes('&')
    ? value
        .replace(/&#x([0-9a-f]+);?/gi, (_, h: string) => String.fromCodePoint(Math.min(parseInt(h, 16), 0x10ffff)))
        .replace(/&#([0-9]+);?/g, (_, d: string) => String.fromCodePoint(Math.min(parseInt(d, 10), 0x10ffff)))
        .replace(/&colon;/gi, ':')
        .replace(/&(?:tab|newline);/gi, '')
    : value;
  return decoded.replace(/[\u0000-\u0020\u007f]+/g, '').toLowerCase();
}

function checkAttribute(element: string, name: string, value: string): NarrativeProblem | undefined {
  const bare = bareAmpersand(value);
  if (bare !== undefined) return malformed(`a bare '&' (write &amp;) in attribute '${name}' of <${element}> near ${JSON.stringify(bare)}`);
  if (/^on/i.test(name)) return unsafe(`event attribute '${name}' on <${element}>`);
  const v = normalizeUrlish(value);
  if (/(?:java|vb|live)script:/.test(v)) return unsafe(`a script URL in attribute '${name}' of <${element}>`);
  if (name === 'style' && v.includes('expression(')) return unsafe(`a script expression in the style of <${element}>`);
  if (name === 'xmlns') return value === XHTML_NS ? undefined : notAllowed(`<${element}> declares namespace '${value}'; only the XHTML namespace is allowed`);
  if (name.includes(':') && !name.startsWith('xml:')) return notAllowed(`attribute '${name}' on <${element}> is not allowed (no other namespaces)`);
  return undefined;
}

/** Where `text` has an '&' that starts no entity reference (the text from there), else undefined. */
function bareAmpersand(text: string): string | undefined {
  let at = text.indexOf('&');
  while (at >= 0) {
    ENTITY.lastIndex = at;
    if (!ENTITY.test(text)) return text.slice(at, at + 20);
    at = text.indexOf('&', ENTITY.lastIndex);
  }
  return undefined;
}

/** The first txt-1/txt-2 problem of a Narrative.div value, or undefined when it is acceptable. */
export function checkNarrativeDiv(div: string): NarrativeProblem | undefined {
  const n = div.length;
  const open: string[] = [];
  let hasContent = false;
  let rootSeen = false;
  let i = 0;
  while (i < n) {
    const lt = div.indexOf('<', i);
    const end = lt < 0 ? n : lt;
    if (end > i) {
      const text = div.slice(i, end);
      if (open.length === 0) {
        if (/\S/.test(text)) return malformed('text outside the root <div>');
      } else {
        const bare = bareAmpersand(text);
        if (bare !== undefined) return malformed(`a bare '&' (write &amp;) near ${JSON.stringify(bare)}`);
        hasContent ||= /\S/.test(text);
      }
    }
    if (lt < 0) break;
    i = lt;
    if (div.startsWith('<!--', i)) {
      const close = div.indexOf('-->', i + 4);
      if (close < 0) return malformed('an unterminated comment');
      if (open.length === 0) return malformed('a comment outside the root <div>');
      i = close + 3;
      continue;
    }
    if (div.startsWith('<![CDATA[', i)) {
      const close = div.indexOf(']]>', i + 9);
      if (close < 0) return malformed('an unterminated CDATA section');
      if (open.length === 0) return malformed('a CDATA section outside the root <div>');
      hasContent ||= /\S/.test(div.slice(i + 9, close));
      i = close + 3;
      continue;
    }
    if (div[i + 1] === '!' || div[i + 1] === '?') return malformed('a DOCTYPE, declaration or processing instruction');
    if (div[i + 1] === '/') {
      CLOSE_TAG.lastIndex = i;
      const m = CLOSE_TAG.exec(div);
      if (!m) return malformed(`a broken end tag near ${JSON.stringify(div.slice(i, i + 20))}`);
      const expected = open.pop();
      if (expected !== m[1]) {
        if (!expected) return malformed(`</${m[1]}> has no start tag`);
        return malformed(VOID.has(expected) ? `<${expected}> is never closed (write <${expected}/>)` : `</${m[1]}> found where </${expected}> was expected`);
      }
      i = CLOSE_TAG.lastIndex;
      continue;
    }
    // a start tag
    NAME.lastIndex = i + 1;
    const nameMatch = NAME.exec(div);
    if (!nameMatch) return malformed(`a '<' that starts no tag (write &lt;) near ${JSON.stringify(div.slice(i, i + 20))}`);
    const name = nameMatch[0];
    let at = NAME.lastIndex;
    const attributes = new Map<string, string>();
    for (;;) {
      ATTRIBUTE.lastIndex = at;
      const a = ATTRIBUTE.exec(div);
      if (!a) break;
      if (attributes.has(a[1])) return malformed(`attribute '${a[1]}' repeated on <${name}>`);
      attributes.set(a[1], a[2] ?? a[3]);
      at = ATTRIBUTE.lastIndex;
    }
    TAG_END.lastIndex = at;
    const tagEnd = TAG_END.exec(div);
    if (!tagEnd) return malformed(`a broken start tag <${name}> (attribute values must be quoted)`);
    if (open.length === 0) {
      if (rootSeen) return malformed('content after the root </div>');
      if (name !== 'div') return malformed(`the root element is <${name}>; it must be <div xmlns="${XHTML_NS}">`);
      if (attributes.get('xmlns') !== XHTML_NS) return malformed(`the root <div> must declare xmlns="${XHTML_NS}"`);
      rootSeen = true;
    }
    if (ACTIVE.has(name.toLowerCase())) return unsafe(`<${name}> is not allowed`);
    if (!ALLOWED.has(name)) return notAllowed(`<${name}> is not an element allowed in a narrative`);
    for (const [attr, value] of attributes) {
      const problem = checkAttribute(name, attr, value);
      if (problem) return problem;
    }
    if (name === 'img') hasContent = true;
    if (tagEnd[1] !== '/') open.push(name);
    i = TAG_END.lastIndex;
  }
  if (!rootSeen) return malformed(`no root <div xmlns="${XHTML_NS}"> element`);
  if (open.length) return malformed(`<${open[open.length - 1]}> is never closed`);
  if (!hasContent) return { code: 'NARRATIVE_EMPTY', message: 'txt-2: the narrative has no content (no text and no image)' };
  return undefined;
}
