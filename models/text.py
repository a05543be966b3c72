"""Text front end for text-to-speech: English normalisation, tokens (IPA phonemes from espeak-ng,
or characters when espeak-ng is absent), the token vocabulary, and syllables for singing.

Torch-free: plain Python, numpy and one espeak-ng subprocess per `phonemize` call.

Token conventions (both modes): one token per phoneme (or letter), " " between words of a clause,
and the clause's closing mark ("," "." ";" ":" "!" "?") as the clause's last token; there is no
" " around a mark. Phoneme tokens keep length marks and diacritics attached ("ɑː", "n̩"); the stress
marks "ˈ" and "ˌ" are tokens of their own placed just before the phoneme they precede.
"""

from __future__ import annotations

import functools
import itertools
import re
import shutil
import subprocess
import unicodedata
import warnings

import numpy as np

from synth.errors import SynthError, SynthWarning

ESPEAK = "espeak-ng"
PUNCTUATION = (",", ".", ";", ":", "!", "?")
STRESS_MARKS = ("ˈ", "ˌ")
# espeak-ng's en-us gives a trilled "r" in a few loanwords ("marquis" -> m ɑːɹ r k iː) beside
# English's one rhotic ɹ: read as ɹ, so that no common word holds a phoneme a corpus never has
ENGLISH_PHONEMES = {"r": "ɹ"}
MODES = ("phonemes", "characters")
PAD, UNK = "<pad>", "<unk>"

# ---------------------------------------------------------------- number speller

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def cardinal_words(n: int) -> str:
    """English words of the integer `n` ("twenty one", "three million five"); numbers of a trillion
    or more are read digit by digit. Negative numbers start with "minus"."""
    if n < 0:
        return "minus " + cardinal_words(-n)
    if n >= 10 ** 12:
        return digit_words(str(n))
    words = []
    for scale, name in _SCALES:
        if n >= scale:
            words += _below_thousand(n // scale) + [name]
            n %= scale
    if n or not words:
        words += _below_thousand(n)
    return " ".join(words)


def digit_words(digits: str) -> str:
    """Each digit of the string `digits` as a word: "07" -> "zero seven"."""
    return " ".join(_ONES[int(d)] for d in digits)


def ordinal_words(n: int) -> str:
    """English ordinal of the integer `n` >= 0: 21 -> "twenty first", 100 -> "one hundredth"."""
    *head, last = cardinal_words(n).split()
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(head + [last])


def year_words(n: int) -> str:
    """A year as spoken: 1984 -> "nineteen eighty four", 1905 -> "nineteen oh five", 1900 ->
    "nineteen hundred", 2005 -> "two thousand five", 2024 -> "twenty twenty four". Outside
    1100..2099 (or a whole thousand) this is the cardinal."""
    if not 1100 <= n <= 2099 or n % 1000 == 0 or 2000 <= n <= 2009:
        return cardinal_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal_words(high) + " hundred"
    if low < 10:
        return f"{cardinal_words(high)} oh {_ONES[low]}"
    return f"{cardinal_words(high)} {cardinal_words(low)}"


def _number_words(digits: str) -> str:
    """Words of a digit string with optional thousands commas, as a count or a year."""
    plain = digits.replace(",", "")
    if len(plain) > 1 and plain.startswith("0"):
        return digit_words(plain)
    if "," not in digits and len(plain) == 4:
        return year_words(int(plain))
    return cardinal_words(int(plain))


def _plural(words: str) -> str:
    """Plural of spelled number words: "eighty" -> "eighties"."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


# ---------------------------------------------------------------- normalisation

_UNICODE = {"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "″": '"',
            "‘": "'", "’": "'", "‚": "'", "‹": "'", "›": "'", "′": "'",
            "–": "-", "‐": "-", "‑": "-", "−": "-", "—": " - ", "―": " - ",
            "…": "...", "|": " ", "&": " and ", "@": " at ", "+": " plus "}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence")}
# abbreviation -> (expansion, may end a sentence)
_ABBREVIATIONS = {"mr": ("mister", False), "mrs": ("missus", False), "ms": ("miss", False),
                  "dr": ("doctor", False), "prof": ("professor", False), "rev": ("reverend", False),
                  "gen": ("general", False), "capt": ("captain", False), "lt": ("lieutenant", False),
                  "col": ("colonel", False), "sgt": ("sergeant", False), "mt": ("mount", False),
                  "vs": ("versus", False), "jr": ("junior", True),
                  "sr": ("senior", True), "etc": ("et cetera", True), "inc": ("incorporated", True),
                  "ltd": ("limited", True), "e.g": ("for example", False), "i.e": ("that is", False)}
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
_WORD_END = r"(?=$|[^\w])"


def _match_case(word: str, like: str) -> str:
    """`word`, capitalised when `like` starts with a capital."""
    return word[0].upper() + word[1:] if like[:1].isupper() else word


def _sentence_ends_after(text: str, end: int) -> bool:
    """Whether the text after index `end` looks like a new sentence (nothing, or a capital)."""
    rest = text[end:].lstrip()
    return not rest or (rest[0].isupper() and end < len(text) and text[end].isspace())


def _expand_abbreviations(text: str) -> str:
    """Titles, Latin abbreviations, St./No. and initialisms spelled out; a period that ends a
    sentence stays."""
    def replace(match: re.Match) -> str:
        word = match.group(1)
        expansion, may_end = _ABBREVIATIONS[word.lower()]
        period = "." if may_end and _sentence_ends_after(text, match.end()) else ""
        return _match_case(expansion, word) + period

    names = "|".join(sorted((re.escape(k) for k in _ABBREVIATIONS), key=len, reverse=True))
    text = re.sub(rf"\b({names})\.", replace, text, flags=re.IGNORECASE)

    def saint_or_street(match: re.Match) -> str:
        before = text[:match.start()].rstrip()
        if before[-1:].isalpha() and before.split()[-1][:1].isupper():
            return _match_case("street", match.group(1)) + ("." if _sentence_ends_after(text, match.end()) else "")
        return _match_case("saint", match.group(1))

    text = re.sub(r"\b(St)\.", saint_or_street, text)
    text = re.sub(r"\b(No)\.(?=\s*\d)", lambda m: _match_case("number", m.group(1)), text, flags=re.IGNORECASE)
    # a middle initial before a name: "John F. Kennedy" -> "John F Kennedy"
    text = re.sub(r"(?<![\w.])([A-Z])\.(?=\s+[A-Z][a-z])", r"\1", text)
    # initialisms: "U.S." -> "U S", "a.m." -> "a m"
    return re.sub(r"\b((?:[A-Za-z]\.){2,})(?!\w)",
                  lambda m: " ".join(m.group(1).replace(".", " ").split())
                  + ("." if not text[m.end():].strip() else ""), text)


def _money(match: re.Match) -> str:
    """Words of a currency match (symbol, whole part, fraction, scale word)."""
    unit, units, sub, subs = _CURRENCIES[match.group(1)]
    whole, fraction, scale = match.group(2), match.group(3), match.group(4)
    if scale:
        amount = _number_words(whole) if fraction is None else f"{_number_words(whole)} point {digit_words(fraction)}"
        return f" {amount} {scale.lower()} {units} "
    if fraction is not None and len(fraction) > 2:
        return f" {_number_words(whole)} point {digit_words(fraction)} {units} "
    count = int(whole.replace(",", ""))
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if count or not cents:
        parts.append(f"{cardinal_words(count)} {unit if count == 1 else units}")
    if cents:
        parts.append(f"{cardinal_words(cents)} {sub if cents == 1 else subs}")
    return " " + " ".join(parts) + " "


def _decimal(whole: str | None, fraction: str) -> str:
    """Words of a decimal number: "3", "14" -> "three point one four"."""
    head = _number_words(whole) + " " if whole else ""
    return f"{head}point {digit_words(fraction)}"


def _expand_numbers(text: str) -> str:
    """Money, percents, times, ordinals, plural years, decimals and integers spelled out (padded
    with spaces, which normalize_text collapses)."""
    text = re.sub(rf"([$€£])\s?({_NUM})(?:\.(\d+))?(?:\s+(thousand|million|billion|trillion)\b)?",
                  _money, text, flags=re.IGNORECASE)
    text = re.sub(rf"(?<![\d.])({_NUM})(?:\.(\d+))?\s?%",
                  lambda m: f" {_decimal(*m.groups()) if m.group(2) else _number_words(m.group(1))} percent ", text)
    text = re.sub(r"(?<![\d:])([01]?\d|2[0-4]):([0-5]\d)(?![\d:])",
                  lambda m: f" {cardinal_words(int(m.group(1)))} "
                            + ("o'clock " if m.group(2) == "00" else
                               f"oh {_ONES[int(m.group(2))]} " if m.group(2) < "10" else
                               f"{cardinal_words(int(m.group(2)))} "), text)
    text = re.sub(rf"(?<!\d)({_NUM})(st|nd|rd|th){_WORD_END}",
                  lambda m: f" {ordinal_words(int(m.group(1).replace(',', '')))} ", text, flags=re.IGNORECASE)
    text = re.sub(rf"(?<!\d)({_NUM})s{_WORD_END}", lambda m: f" {_plural(_number_words(m.group(1)))} ", text)
    text = re.sub(rf"(?<!\d)(?<!\d\.)({_NUM})?\.(\d+)(?!\.?\d)",
                  lambda m: f" {_decimal(m.group(1), m.group(2))} ", text)
    text = re.sub(r"(?<![\w-])-(?=\d)", "minus ", text)
    text = re.sub(_NUM, lambda m: f" {_number_words(m.group(0))} ", text)
    return text.replace("%", " percent ")


def normalize_text(text: str) -> str:
    """English text as it is spoken, for TTS and for the "normalized text" column of an LJSpeech
    metadata.csv: unicode quotes and dashes to ASCII, "&" -> "and", abbreviations (Mr. Dr. St.
    e.g. i.e. vs. etc.) and numbers (counts, years, decimals, ordinals, money, percents, times)
    spelled out, whitespace collapsed. Sentence punctuation and apostrophes are kept, case is
    kept. Applying it twice gives the same text."""
    if not isinstance(text, str):
        raise SynthError(f"normalize_text: expected a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"(?<=\d)\s*–\s*(?=\d)", " to ", text)  # en dash in a range: "1990–1995"
    text = "".join(_UNICODE.get(c, " " if c.isspace() or unicodedata.category(c) == "Cc" else c) for c in text)
    text = _expand_abbreviations(text)
    text = _expand_numbers(text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+(?=[,.;:!?])", "", text)


# ---------------------------------------------------------------- clauses and tokens

def _clauses(normalized: str) -> list[tuple[str, str]]:
    """(clause text, closing mark) of each clause of normalised text; a clause that does not end in a
    mark gets "."; clauses without a letter are dropped."""
    found = []
    for match in re.finditer(r"([^,.;:!?]*)([,.;:!?]+|$)", normalized):
        body, marks = match.group(1), match.group(2)
        if not any(c.isalpha() for c in body):
            continue
        mark = "?" if "?" in marks else "!" if "!" in marks else (marks[:1] or ".")
        found.append((body, mark))
    return found


@functools.lru_cache(maxsize=1)
def espeak_available() -> bool:
    """Whether the espeak-ng program is on PATH and runs (checked once per process)."""
    if shutil.which(ESPEAK) is None:
        return False
    try:
        return subprocess.run([ESPEAK, "--version"], check=False, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _espeak(lines: list[str], voice: str) -> list[str]:
    """espeak-ng's IPA output for the given input lines (one call; output lines as printed)."""
    try:
        done = subprocess.run([ESPEAK, "-q", "-b", "1", "--ipa", "-v", voice, "--sep=_"],
                              input="\n".join(lines) + "\n", check=False, capture_output=True, text=True,
                              encoding="utf-8", timeout=30 + len(lines))
    except FileNotFoundError:
        raise SynthError(f"{ESPEAK} is not installed (phoneme tokens need it; use mode 'characters')") from None
    except subprocess.TimeoutExpired:
        raise SynthError(f"{ESPEAK} timed out on {len(lines)} clause(s)") from None
    problem = (done.stderr or "").strip()
    if done.returncode != 0 or problem.lower().startswith("error"):
        raise SynthError(f"{ESPEAK} failed with voice {voice!r}: {problem or f'exit status {done.returncode}'}")
    output = done.stdout.split("\n")
    return output[:-1] if output and output[-1] == "" else output


def _phoneme_tokens(word: str) -> list[str]:
    """Tokens of one espeak word ("h_ə_l_ˈoʊ"): stress marks split off before their phoneme, and
    the few phonemes English does not contrast read as the one it has (ENGLISH_PHONEMES)."""
    tokens = []
    for phoneme in word.split("_"):
        tokens += [c for c in phoneme if c in STRESS_MARKS]
        rest = "".join(c for c in phoneme if c not in STRESS_MARKS)
        if rest:
            tokens.append(ENGLISH_PHONEMES.get(rest, rest))
    return tokens


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """IPA phoneme tokens of `text` (normalised first) from espeak-ng `voice`, in the token
    conventions of this module; [] for text without words. One espeak-ng call for all clauses, or
    one per clause if espeak-ng broke a long clause over several lines. Raises SynthError when
    espeak-ng is missing or fails (e.g. an unknown voice)."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+", voice or ""):
        raise SynthError(f"phonemize: voice {voice!r} is not an espeak-ng voice name like 'en-us'")
    clauses = _clauses(normalize_text(text))
    if not clauses:
        return []
    # only letters, apostrophes and hyphens reach espeak-ng ("[[" would switch it to phoneme input)
    bodies = [" ".join(w.strip("'-") for w in re.sub(r"[^\w'\-]|[\d_]", " ", body).split() if w.strip("'-"))
              for body, _ in clauses]
    lines = _espeak(bodies, voice)
    if len(lines) != len(bodies):
        lines = [" ".join(_espeak([body], voice)) for body in bodies]
    tokens = []
    for line, (_, mark) in zip(lines, clauses):
        words = re.sub(r"\([a-z\-]+\)", " ", line).split()
        tokens += _clause_tokens([_phoneme_tokens(word) for word in words], mark)
    return tokens


def _clause_tokens(words: list[list[str]], mark: str) -> list[str]:
    """One clause's tokens: its words' tokens with " " between them, then its punctuation mark."""
    tokens = []
    for number, word in enumerate(words):
        if number:
            tokens.append(" ")
        tokens += word
    return tokens + [mark]


def characters(text: str) -> list[str]:
    """Character tokens of `text` (normalised first), the fallback without espeak-ng: lowercase
    letters a-z (accents stripped), apostrophes inside words, " " between words, the clause marks;
    everything else is dropped."""
    tokens = []
    for body, mark in _clauses(normalize_text(text)):
        plain = unicodedata.normalize("NFKD", body.lower())
        plain = re.sub(r"[^a-z']+", " ", "".join(c for c in plain if not unicodedata.combining(c)))
        words = [w for w in re.findall(r"[a-z]+(?:'[a-z]+)*", plain)]
        if words:
            tokens += _clause_tokens([list(word) for word in words], mark)
    return tokens


# the languages people most likely mean by a letter of each script (the first word of its Unicode name)
_SCRIPT_LANGUAGES = {"HIRAGANA": "Japanese", "KATAKANA": "Japanese", "CJK": "Chinese or Japanese",
                     "HANGUL": "Korean", "CYRILLIC": "Russian (Cyrillic script)", "GREEK": "Greek",
                     "ARABIC": "Arabic", "HEBREW": "Hebrew", "DEVANAGARI": "Hindi (Devanagari script)"}


def english_letters_only(text: str) -> str:
    """`text` without the letters of scripts other than Latin, which the English front end cannot
    read (espeak-ng's English voice spells them out as "Japanese letter ..."); a SynthWarning names
    the language of each script left out."""
    def language(char: str) -> str | None:
        if not unicodedata.category(char).startswith("L") or unicodedata.name(char, "LATIN").startswith("LATIN"):
            return None
        script = unicodedata.name(char, "UNKNOWN").split()[0]
        return _SCRIPT_LANGUAGES.get(script, script.title())

    left_out, kept = {}, []
    for run_language, run in itertools.groupby(text, key=language):
        run = "".join(run)
        if run_language is None:
            kept.append(run)
        else:
            left_out.setdefault(run_language, []).append(run)
            kept.append(" ")
    if not left_out:
        return text
    warnings.warn("this voice speaks English: " + "; ".join(
        f"{name} text ({' '.join(runs)[:24]}) is left out" for name, runs in left_out.items()),
        SynthWarning, stacklevel=3)
    return re.sub(r" {2,}", " ", "".join(kept))


def text_tokens(text: str, mode: str = "auto") -> tuple[list[str], str]:
    """(tokens, mode used) of `text`: mode "phonemes" (espeak-ng, en-us), "characters", or "auto"
    (phonemes when espeak-ng is available, else characters). Letters of other scripts than Latin
    are left out with a warning (english_letters_only)."""
    if mode not in ("auto",) + MODES:
        raise SynthError(f"text tokens: mode {mode!r} is not one of 'auto', 'phonemes', 'characters'")
    if mode == "auto":
        mode = "phonemes" if espeak_available() else "characters"
    text = english_letters_only(text)
    return (phonemize(text) if mode == "phonemes" else characters(text)), mode


# ---------------------------------------------------------------- vocabulary

def _check_symbols(symbols, mode, where: str) -> list[str]:
    if mode not in MODES:
        raise SynthError(f"{where}: key 'mode' must be 'phonemes' or 'characters', got {mode!r}")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        raise SynthError(f"{where}: key 'symbols' must be a list of non-empty strings, got {symbols!r:.80}")
    if symbols[:2] != [PAD, UNK]:
        raise SynthError(f"{where}: key 'symbols' must start with {PAD!r}, {UNK!r}, got {symbols[:2]!r}")
    seen = set()
    for symbol in symbols:
        if symbol in seen:
            raise SynthError(f"{where}: key 'symbols' lists {symbol!r} twice")
        seen.add(symbol)
    return list(symbols)


class Vocabulary:
    """Token <-> id table: id 0 is "<pad>", 1 is "<unk>", then the symbols. Unknown tokens encode
    to 1 and are counted in `unknown_count` (cumulative) so callers can warn."""

    def __init__(self, symbols: list[str], mode: str, where: str = "vocabulary"):
        """symbols: all symbols, starting with "<pad>", "<unk>"; mode: "phonemes" or "characters"."""
        self.symbols = _check_symbols(symbols, mode, where)
        self.mode = mode
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.unknown_count = 0

    @classmethod
    def build(cls, token_lists, mode: str) -> Vocabulary:
        """The vocabulary of every token in `token_lists` (an iterable of token lists), sorted so
        the ids do not depend on the order of the lists."""
        found = set()
        for tokens in token_lists:
            if isinstance(tokens, str):
                raise SynthError("Vocabulary.build: expected lists of tokens, got a string")
            found.update(str(t) for t in tokens)
        found -= {PAD, UNK, ""}
        return cls([PAD, UNK] + sorted(found), mode, "Vocabulary.build")

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, tokens) -> np.ndarray:
        """int64 ids, shape [len(tokens)], of a token list; unknown tokens give 1 and are counted."""
        tokens = list(tokens)
        ids = np.fromiter((self.index.get(t, 1) for t in tokens), dtype=np.int64, count=len(tokens))
        self.unknown_count += sum(1 for t in tokens if t not in self.index)
        return ids

    def decode(self, ids) -> list[str]:
        """Tokens of an id sequence (shape [n], ints in 0..len-1; "<pad>" and "<unk>" included)."""
        tokens = []
        for value in np.asarray(ids).reshape(-1):
            if not 0 <= int(value) < len(self.symbols):
                raise SynthError(f"vocabulary: id {int(value)} is outside 0..{len(self.symbols) - 1}")
            tokens.append(self.symbols[int(value)])
        return tokens

    def to_dict(self) -> dict:
        """JSON-ready {"mode": ..., "symbols": [...]}."""
        return {"mode": self.mode, "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, data, where: str = "vocabulary") -> Vocabulary:
        """The vocabulary of a `to_dict()` mapping; `where` (a file and key) names it in errors."""
        if not isinstance(data, dict):
            raise SynthError(f"{where}: expected a mapping with 'mode' and 'symbols', got {type(data).__name__}")
        unknown = sorted(set(data) - {"mode", "symbols"})
        if unknown:
            raise SynthError(f"{where}: unknown key {unknown[0]!r} (expected 'mode' and 'symbols')")
        for key in ("mode", "symbols"):
            if key not in data:
                raise SynthError(f"{where}: missing key {key!r}")
        return cls(data["symbols"], data["mode"], where)


# ---------------------------------------------------------------- vowels and syllables

_VOWEL_CHARS = set("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪɯɵøœɶʉʊʌʏᵻᵿ")
_SYLLABIC = ("\u0329", "\u030d")


def join_stress(tokens: list[str]) -> list[str]:
    """The tokens with each stress mark joined to the phoneme after it ("ˈ", "oʊ" -> "ˈoʊ"): what
    the text-to-mel model reads, so that a stressed vowel is one sound with one duration (a mark
    of its own took frames from its vowel in alignment). A mark with nothing after it is dropped."""
    joined, marks = [], ""
    for token in tokens:
        if token in STRESS_MARKS:
            marks += token
        elif marks and token.strip() and token not in PUNCTUATION:
            joined.append(marks + token)
            marks = ""
        else:
            joined.append(token)
            marks = ""
    return joined


def split_stress(joined: list[str]) -> tuple[list[str], list[int]]:
    """Joined tokens (join_stress) as plain phonemes and a stress level each: 0 none, 1 primary
    ("ˈ"), 2 secondary ("ˌ"; primary where both are marked). What a model with the stress feature
    reads: its vocabulary then holds each phoneme once, stressed or not."""
    phonemes, levels = [], []
    for token in joined:
        plain = token.lstrip("".join(STRESS_MARKS))
        marks = token[:len(token) - len(plain)]
        phonemes.append(plain)
        levels.append(1 if STRESS_MARKS[0] in marks else 2 if marks else 0)
    return phonemes, levels


def model_tokens(tokens: list[str], stress: bool) -> tuple[list[str], list[int]]:
    """Tokens (stress marks separate, as text_tokens gives them, or joined) as a text-to-mel model
    reads them: (tokens, stress level of each). With `stress`, plain phonemes and their levels
    (split_stress); without, the joined tokens and levels all 0."""
    joined = join_stress(tokens)
    return split_stress(joined) if stress else (joined, [0] * len(joined))


def is_vowel(token: str) -> bool:
    """Whether a token is a vowel: an IPA vowel, diphthong or r-coloured vowel ("ɚ", "aɪ", "ɑːɹ"),
    a syllabic consonant ("n̩"), or one of the letters a e i o u y. Stress marks, spaces,
    punctuation and "<pad>"/"<unk>" are not."""
    if not token or token.startswith("<"):
        return False
    return any(c in _VOWEL_CHARS for c in token) or any(m in token for m in _SYLLABIC)


def _units(word: list[int], tokens: list[str]) -> list[list[int]]:
    """Token indices of a word grouped so a stress mark travels with the phoneme after it."""
    units, held = [], []
    for i in word:
        held.append(i)
        if tokens[i] not in STRESS_MARKS:
            units.append(held)
            held = []
    if held:
        if units:
            units[-1] += held
        else:
            units.append(held)
    return units


def _letter_vowels(letters: list[str]) -> list[bool]:
    """Vowel flags of a written word: "y" before a vowel is a consonant, a final silent "e" (after
    a consonant other than "l", with a vowel earlier) is not a vowel."""
    flags = [c in "aeiou" or (c == "y" and not (k + 1 < len(letters) and letters[k + 1] in "aeiou"))
             for k, c in enumerate(letters)]
    if (len(letters) >= 3 and letters[-1] == "e" and not flags[-2] and letters[-2] not in "l'"
            and any(flags[:-2])):
        flags[-1] = False
    return flags


def _word_syllables(word: list[int], tokens: list[str], by_letters: bool) -> list[list[int]]:
    """Syllables (token index lists) of one word, [] when it has no vowel."""
    units = _units(word, tokens)
    if by_letters:
        flags = _letter_vowels([tokens[u[-1]] for u in units])
    else:
        flags = [is_vowel(tokens[u[-1]]) for u in units]
    nuclei = []  # (first unit, last unit) of each nucleus
    for k, flag in enumerate(flags):
        if flag and by_letters and nuclei and nuclei[-1][1] == k - 1:
            nuclei[-1] = (nuclei[-1][0], k)
        elif flag:
            nuclei.append((k, k))
    if not nuclei:
        return []
    bounds = [0]
    for (_, end), (start, _) in itertools.pairwise(nuclei):
        bounds.append(start - 1 if start - 1 > end else start)
    bounds.append(len(units))
    return [[i for u in units[a:b] for i in u] for a, b in itertools.pairwise(bounds)]


def syllables(tokens: list[str], mode: str = "auto") -> list[list[int]]:
    """Token indices of each syllable, in order, for singing. Each syllable has one vowel nucleus
    (in "characters" mode a run of vowel letters); within a word the last consonant before a
    vowel starts its syllable and earlier ones end the previous one; stress marks go with the
    phoneme after them; words never share a syllable except that a word without a vowel joins the
    syllable before it in its clause (or after it, when it starts the clause). In a clause with no
    vowel at all each word is one syllable without a nucleus. Spaces and marks are in no syllable.
    mode: "phonemes", "characters", or "auto" (characters when every token is ASCII)."""
    if mode not in ("auto",) + MODES:
        raise SynthError(f"syllables: mode {mode!r} is not one of 'auto', 'phonemes', 'characters'")
    by_letters = mode == "characters" or (mode == "auto" and all(t.isascii() for t in tokens))
    result, clause, waiting, word = [], [], [], []
    for i, token in enumerate(list(tokens) + ["."]):
        if token != " " and token not in PUNCTUATION:
            word.append(i)
            continue
        if word:
            found = _word_syllables(word, tokens, by_letters)
            if not found and clause:
                clause[-1] += word
            elif not found:
                waiting.append(word)
            else:
                if waiting:
                    found[0] = [j for w in waiting for j in w] + found[0]
                    waiting = []
                clause += found
            word = []
        if token in PUNCTUATION:
            result += clause + waiting
            clause, waiting = [], []
    return [sorted(s) for s in result]
