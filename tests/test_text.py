"""models.text: normalisation, espeak-ng phoneme tokens, character tokens, vocabulary, syllables."""

import json
import re
import warnings

import numpy as np
import pytest

from models.text import (Vocabulary, cardinal_words, characters, english_letters_only, espeak_available, is_vowel,
                         join_stress, model_tokens, normalize_text, phonemize, split_stress, syllables, text_tokens)
from synth.errors import SynthError, SynthWarning

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
MARKS = {",", ".", ";", ":", "!", "?"}


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize("text, expected", [
    ("I have 3 cats.", "I have three cats."),
    ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
    ("12,000,000,005", "twelve billion five"),
    ("3.5 and 0.25 and .5", "three point five and zero point two five and point five"),
    ("1st 2nd 3rd 4th 11th 12th 21st 100th", "first second third fourth eleventh twelfth twenty first one hundredth"),
    ("In 1984.", "In nineteen eighty four."),
    ("1905 1900 2000 2005 2024", "nineteen oh five nineteen hundred two thousand two thousand five twenty twenty four"),
    ("The 1980s", "The nineteen eighties"),
    ("$3.50", "three dollars fifty cents"),
    ("$1 or $0.01 or $1,000", "one dollar or one cent or one thousand dollars"),
    ("$3.5 or £2.01", "three dollars fifty cents or two pounds one penny"),
    ("$2.5 million", "two point five million dollars"),
    ("50% and 3.5%", "fifty percent and three point five percent"),
    ("at 3:05 or 10:30", "at three oh five or ten thirty"),
    ("-5 degrees", "minus five degrees"),
    ("007", "zero zero seven"),
    ("Tom & Jerry", "Tom and Jerry"),
])
def test_numbers_money_and_symbols_are_spelled(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith met Mrs. Jones and Dr. Who.", "Mister Smith met Missus Jones and Doctor Who."),
    ("St. Louis is on Main St. It is big.", "Saint Louis is on Main Street. It is big."),
    ("fruit, e.g. apples, i.e. food", "fruit, for example apples, that is food"),
    ("cats vs. dogs", "cats versus dogs"),
    ("apples, pears etc.", "apples, pears et cetera."),
    ("in the U.S. today", "in the U S today"),
])
def test_abbreviations_expand_and_do_not_end_sentences(text, expected):
    assert normalize_text(text) == expected


def test_unicode_quotes_dashes_and_whitespace_become_ascii():
    text = "“Quoted”  —\t‘single’ don’t…\n pages 10–20"
    assert normalize_text(text) == "\"Quoted\" - 'single' don't... pages ten to twenty"


def test_normalising_twice_changes_nothing():
    text = "On Jan. 3rd, 1999, Mr. O'Neil paid $12.05 (25% off) at 7:45 & left; 2.5 km... Why?!"
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert not any(c.isdigit() for c in once)


def test_cardinal_words_reach_billions_and_read_longer_numbers_digit_by_digit():
    assert cardinal_words(0) == "zero"
    assert cardinal_words(999_999_999_999).startswith("nine hundred ninety nine billion")
    assert cardinal_words(10 ** 12) == "one" + " zero" * 12


def test_normalize_rejects_non_text():
    with pytest.raises(SynthError, match="expected a string, got bytes"):
        normalize_text(b"hello")


# ---------------------------------------------------------------- phonemes

@needs_espeak
def test_hello_world_has_stress_word_boundary_and_final_period():
    tokens = phonemize("Hello world.")
    assert tokens[:5] == ["h", "ə", "l", "ˈ", "oʊ"]
    assert tokens.count(" ") == 1 and tokens[-1] == "."
    assert "ɜː" in tokens  # the length mark stays on its vowel
    assert all(t and "_" not in t for t in tokens)
    # a stress mark is its own token, directly before a phoneme
    for i, token in enumerate(tokens):
        if "ˈ" in token or "ˌ" in token:
            assert token in ("ˈ", "ˌ") and tokens[i + 1] not in MARKS | {" "}


@needs_espeak
def test_clause_marks_are_kept_and_unmarked_text_ends_with_period():
    tokens = phonemize("Yes, no?")
    assert tokens == ["j", "ˈ", "ɛ", "s", ",", "n", "ˈ", "oʊ", "?"]
    assert phonemize("Wait... what?!")[-1] == "?"
    assert phonemize("hello")[-1] == "."
    assert phonemize("") == [] and phonemize(" ... ") == []


@needs_espeak
def test_numbers_are_phonemised_as_their_words():
    assert phonemize("3 cats") == phonemize("three cats")
    assert "θ" in phonemize("3")


@needs_espeak
def test_clause_too_long_for_one_espeak_line_keeps_every_word():
    # espeak-ng breaks a clause this long over two output lines; no word may get lost
    tokens = phonemize(" ".join(["international"] * 60) + ", ok.")
    assert tokens.count(" ") == 59 and tokens.count(",") == 1
    assert tokens[-4:] == ["k", "ˈ", "eɪ", "."]


@needs_espeak
def test_espeak_failures_raise_synth_error():
    with pytest.raises(SynthError, match="voice 'xx'.*does not exist"):
        phonemize("hello", voice="xx")
    with pytest.raises(SynthError, match="voice 'en us; ls' is not an espeak-ng voice name"):
        phonemize("hello", voice="en us; ls")


# ---------------------------------------------------------------- characters and modes

def test_characters_keep_letters_apostrophes_spaces_and_marks():
    assert characters("It's 3, Mr.  Café!") == list("it's three") + [","] + list("mister cafe") + ["!"]
    assert characters("well-known (really)") == list("well known really") + ["."]
    assert characters("#*") == []


def test_text_tokens_modes():
    tokens, mode = text_tokens("Hi, you.", "characters")
    assert (tokens, mode) == (["h", "i", ",", "y", "o", "u", "."], "characters")
    if espeak_available():
        tokens, mode = text_tokens("Hi, you.")
        assert mode == "phonemes" and tokens == phonemize("Hi, you.")
    with pytest.raises(SynthError, match="mode 'ipa' is not one of"):
        text_tokens("hi", "ipa")


# ---------------------------------------------------------------- vocabulary

def test_vocabulary_round_trip_through_json():
    lists = [characters("a bad cab."), characters("dab!")]
    vocabulary = Vocabulary.build(lists, "characters")
    assert vocabulary.symbols[:2] == ["<pad>", "<unk>"]
    assert len(vocabulary) == 2 + len({t for tokens in lists for t in tokens})
    again = Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())), "model.json: vocabulary")
    assert again.to_dict() == vocabulary.to_dict() == Vocabulary.build(lists[::-1], "characters").to_dict()
    ids = again.encode(lists[0])
    assert ids.dtype == np.int64 and ids.shape == (len(lists[0]),) and ids.min() >= 2
    assert again.decode(ids) == lists[0]
    assert again.unknown_count == 0


def test_unknown_tokens_map_to_unk_and_are_counted():
    vocabulary = Vocabulary.build([["a", "b"]], "characters")
    assert vocabulary.encode(["a", "z", "b", "q"]).tolist() == [2, 1, 3, 1]
    assert vocabulary.encode(iter(["z"])).tolist() == [1]
    assert vocabulary.unknown_count == 3
    assert vocabulary.decode([0, 1, 2]) == ["<pad>", "<unk>", "a"]
    with pytest.raises(SynthError, match="id 4 is outside 0..3"):
        vocabulary.decode([4])


@pytest.mark.parametrize("data, message", [
    ([1, 2], "model.json: vocabulary: expected a mapping with 'mode' and 'symbols', got list"),
    ({"mode": "characters"}, "model.json: vocabulary: missing key 'symbols'"),
    ({"mode": "characters", "symbols": ["<pad>", "<unk>"], "size": 2}, "unknown key 'size'"),
    ({"mode": "ipa", "symbols": ["<pad>", "<unk>"]}, "key 'mode' must be 'phonemes' or 'characters', got 'ipa'"),
    ({"mode": "phonemes", "symbols": "ab"}, "key 'symbols' must be a list of non-empty strings"),
    ({"mode": "phonemes", "symbols": ["<unk>", "<pad>", "a"]}, "key 'symbols' must start with '<pad>', '<unk>'"),
    ({"mode": "phonemes", "symbols": ["<pad>", "<unk>", "a", "a"]}, "key 'symbols' lists 'a' twice"),
])
def test_vocabulary_from_dict_names_where_and_key(data, message):
    with pytest.raises(SynthError, match=re.escape(message)) as caught:
        Vocabulary.from_dict(data, "model.json: vocabulary")
    assert str(caught.value).startswith("model.json: vocabulary: ")


# ---------------------------------------------------------------- vowels and syllables

def test_is_vowel():
    assert all(is_vowel(t) for t in ["a", "y", "ə", "ɚ", "ɝ", "aɪ", "oʊ", "iː", "ɑːɹ", "n̩", "ᵻ"])
    assert not any(is_vowel(t) for t in ["t", "ʃ", "dʒ", "ɹ", "ˈ", "ˌ", " ", ".", "<pad>", "<unk>", "'"])


WORD_SYLLABLES = {"hello": 2, "world": 1, "banana": 3, "strength": 1, "beautiful": 3}


@pytest.mark.parametrize("word, count", WORD_SYLLABLES.items())
def test_syllable_counts_from_characters(word, count):
    assert len(syllables(characters(word))) == count


@needs_espeak
@pytest.mark.parametrize("word, count", list(WORD_SYLLABLES.items()) + [("button", 2)])
def test_syllable_counts_from_phonemes(word, count):
    tokens = phonemize(word)
    found = syllables(tokens)
    assert len(found) == count
    for syllable in found:
        assert sum(is_vowel(tokens[i]) for i in syllable) == 1


def test_syllables_split_between_vowels_and_skip_spaces_and_marks():
    tokens = characters("hello, banana world")
    found = syllables(tokens)
    assert ["".join(tokens[i] for i in s) for s in found] == ["hel", "lo", "ba", "na", "na", "world"]
    used = {i for s in found for i in s}
    assert not any(tokens[i] in MARKS | {" "} for i in used)
    assert used == {i for i, t in enumerate(tokens) if t not in MARKS | {" "}}


def test_stress_marks_go_with_the_following_phoneme_and_vowelless_words_attach():
    tokens = ["h", "ə", "l", "ˈ", "oʊ", " ", "p", "s", "t", ",", "p", "s", "t", " ", "ˈ", "ɑː", "."]
    assert syllables(tokens) == [[0, 1], [2, 3, 4, 6, 7, 8], [10, 11, 12, 14, 15]]
    assert syllables(["p", "s", "t", "."]) == [[0, 1, 2]]  # a clause with no vowel: one bare syllable
    with pytest.raises(SynthError, match="mode 'x' is not one of"):
        syllables(tokens, "x")


def test_join_stress_attaches_marks_to_the_following_phoneme():
    assert join_stress(["h", "ə", "l", "ˈ", "oʊ", " ", "ˌ", "ɛ", "ˈ", ","]) == ["h", "ə", "l", "ˈoʊ", " ", "ˌɛ", ","]
    tokens, _ = text_tokens("Hello world.", "phonemes")
    joined = join_stress(tokens)
    assert "ˈ" not in joined and any(t.startswith("ˈ") and len(t) > 1 for t in joined)
    assert len(syllables(joined)) == len(syllables(tokens)) == 3


def test_split_stress_gives_plain_phonemes_and_a_level_each():
    assert split_stress(["h", "ə", "l", "ˈoʊ", " ", "ˌɛ", "ˌˈa", ","]) == (
        ["h", "ə", "l", "oʊ", " ", "ɛ", "a", ","], [0, 0, 0, 1, 0, 2, 1, 0])
    tokens, _ = text_tokens("Hello world.", "phonemes")
    plain, levels = model_tokens(tokens, stress=True)
    assert not any(mark in token for token in plain for mark in "ˈˌ") and 1 in levels
    assert model_tokens(tokens, stress=False) == (join_stress(tokens), [0] * len(join_stress(tokens)))


def test_letters_of_other_scripts_are_left_out_with_a_warning_naming_the_language():
    with pytest.warns(SynthWarning, match=r"this voice speaks English: Japanese text \(こんにちは\) is left out; "
                                          r"Chinese or Japanese text \(世界\) is left out"):
        assert english_letters_only("Hello こんにちは 世界!") == "Hello !"
    with pytest.warns(SynthWarning, match=r"Russian \(Cyrillic script\) text \(Привет мир\) is left out"):
        tokens, _ = text_tokens("Привет мир, hello", "characters")
    assert "".join(tokens).strip(" .,") == "hello"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert english_letters_only("naïve café, Zoë.") == "naïve café, Zoë."  # Latin letters stay


@needs_espeak
def test_espeaks_trilled_r_reads_as_english_rhotic():
    tokens, _ = text_tokens("the marquis", "phonemes")
    assert "r" not in tokens and tokens.count("ɹ") == 1
