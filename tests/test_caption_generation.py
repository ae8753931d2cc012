"""The decoding loop that writes captions (and BLIP-VQA's answers), studio.generation, against transformers' own
generate() on tiny random GPT-2 models.

Nothing is hard-coded: for every prompt and setting, the expected tokens and beam scores come from `model.generate`
on the same weights, and the expected log-probabilities from a plain forward pass. The loop is driven two ways, through
the model's key/value cache and by recomputing the whole sequence each step, which must agree with each other too.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
import torch
import transformers
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

from studio.generation import GenerationResult, GenerationSettings, _process, generate

VOCAB = 64
MAX_NEW = 8
PAD = 0  # never in a prompt below, so transformers infers no padding from it
SEEDS = (0, 1, 2, 3)
PROMPTS = ([5], [7, 11], [3, 20, 9], [40, 2, 33, 17])  # one per seed: prompt lengths 1 to 4


@functools.cache
def _model(seed: int) -> transformers.GPT2LMHeadModel:
    """A 2-layer GPT-2 with random weights, peaked enough to repeat itself and to have clear favourite tokens."""
    torch.manual_seed(seed)
    # A large initializer_range makes the logits far from uniform, so near-ties (where float rounding could pick
    # either token) are rare and the penalties visibly change the output.
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=64,
        vocab_size=VOCAB,
        initializer_range=0.5,
        bos_token_id=None,
        eos_token_id=None,  # GPT-2's 50256 is outside this vocabulary; generate() is told eos
    )
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run several times faster on one thread: with two, they spin against each other and other tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class CachedSteps:
    """DecoderSteps over the model's own key/value cache (what an ONNX decoder with past inputs does)."""

    def __init__(self, model: transformers.GPT2LMHeadModel) -> None:
        self.model = model

    @torch.no_grad()
    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, object]:
        out = self.model(input_ids=torch.from_numpy(input_ids), use_cache=True)
        return out.logits[:, -1].float().numpy(), out.past_key_values

    @torch.no_grad()
    def step(self, input_ids: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        out = self.model(input_ids=torch.from_numpy(input_ids), past_key_values=state, use_cache=True)
        return out.logits[:, -1].float().numpy(), out.past_key_values

    def reorder(self, state: object, beam_index: np.ndarray) -> object:
        state.reorder_cache(torch.from_numpy(beam_index))
        return state


class RecomputeSteps:
    """DecoderSteps without a cache: the state is the running ids, and every step reruns the full sequence."""

    def __init__(self, model: transformers.GPT2LMHeadModel) -> None:
        self.model = model

    @torch.no_grad()
    def _last_logits(self, ids: np.ndarray) -> np.ndarray:
        return self.model(input_ids=torch.from_numpy(ids), use_cache=False).logits[:, -1].float().numpy()

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, object]:
        return self._last_logits(input_ids), input_ids

    def step(self, input_ids: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        ids = np.concatenate([state, input_ids], axis=1)
        return self._last_logits(ids), ids

    def reorder(self, state: object, beam_index: np.ndarray) -> object:
        return state[beam_index]


@torch.no_grad()
def _plain_greedy(model: transformers.GPT2LMHeadModel, prompt: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """Argmax continuation without any eos, and the first step's logits: used to choose eos tokens."""
    ids = list(prompt)
    first_logits = None
    for _ in range(n):
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        first_logits = logits.numpy() if first_logits is None else first_logits
        ids.append(int(logits.argmax()))
    return ids[len(prompt) :], first_logits


@functools.cache
def _cases() -> list[tuple[int, list[int], int]]:
    """(seed, prompt, eos) per model: half take as eos a token greedy search produces, half an unlikely one."""
    cases = []
    for i, (seed, prompt) in enumerate(zip(SEEDS, PROMPTS)):
        path, first_logits = _plain_greedy(_model(seed), prompt, MAX_NEW)
        if i < len(SEEDS) // 2:
            # Greedy search ends within 5 tokens, and some beams finish while others run on: early_stopping matters.
            eos = path[4]
        else:
            # The least likely first token among those greedy search never produces: sequences tend to run long.
            eos = next(int(t) for t in np.argsort(first_logits) if t not in path and t != PAD)
        cases.append((seed, prompt, eos))
    return cases


def _beam_grid() -> list[GenerationSettings]:
    """Beams 2-4 x repetition penalty x n-gram ban x length penalty x early_stopping, and a few with min_new_tokens."""
    grid = [
        GenerationSettings(
            max_new_tokens=MAX_NEW,
            num_beams=beams,
            repetition_penalty=rp,
            no_repeat_ngram_size=ngram,
            length_penalty=lp,
            early_stopping=es,
        )
        for beams, rp, ngram, lp, es in itertools.product(
            (2, 3, 4), (1.0, 1.3), (0, 2), (1.0, 0.6, 2.0), (False, True, "never")
        )
    ]
    # min_new_tokens=4 outlasts the early eos of the first cases (their greedy eos comes 5th, beams' sooner).
    grid += [
        dataclasses.replace(s, min_new_tokens=4)
        for s in grid
        if s.num_beams in (2, 4)
        and s.repetition_penalty == 1.3
        and s.no_repeat_ngram_size == 2
        and s.length_penalty == 1.0
        and s.early_stopping in (False, True)
    ]
    return grid


# min_new_tokens=6 outlasts the greedy eos of the first cases, which comes 5th.
GREEDY_GRID = [
    GenerationSettings(
        max_new_tokens=MAX_NEW, repetition_penalty=rp, no_repeat_ngram_size=ngram, min_new_tokens=min_new
    )
    for rp, ngram, min_new in itertools.product((1.0, 1.3), (0, 2), (0, 6))
]
BEAM_GRID = _beam_grid()


def _settings_id(s: GenerationSettings) -> str:
    if s.num_beams == 1:
        return f"greedy-rp{s.repetition_penalty}-ngram{s.no_repeat_ngram_size}-min{s.min_new_tokens}"
    return (
        f"beams{s.num_beams}-rp{s.repetition_penalty}-ngram{s.no_repeat_ngram_size}-lp{s.length_penalty}"
        f"-es{s.early_stopping}-min{s.min_new_tokens}"
    )


@functools.cache
def _reference(case: int, settings: GenerationSettings) -> tuple[list[int], float | None]:
    """transformers' generate(): the generated tokens, and for beam search its sequences_scores."""
    seed, prompt, eos = _cases()[case]
    input_ids = torch.tensor([prompt])
    kwargs = {}
    if settings.num_beams > 1:  # greedy search warns about beam-only flags
        kwargs = {"length_penalty": settings.length_penalty, "early_stopping": settings.early_stopping}
    with torch.no_grad():
        out = _model(seed).generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=settings.max_new_tokens,
            num_beams=settings.num_beams,
            repetition_penalty=settings.repetition_penalty,
            no_repeat_ngram_size=settings.no_repeat_ngram_size,
            min_new_tokens=settings.min_new_tokens,
            eos_token_id=eos,
            pad_token_id=PAD,
            return_dict_in_generate=True,
            output_scores=True,
            **kwargs,
        )
    tokens = out.sequences[0, len(prompt) :].tolist()
    score = float(out.sequences_scores[0]) if settings.num_beams > 1 else None
    return tokens, score


@torch.no_grad()
def _raw_logprobs(seed: int, prompt: list[int], tokens: list[int]) -> np.ndarray:
    """log_softmax of the model's logits at each generated token, from one forward pass over the whole sequence."""
    logits = _model(seed)(input_ids=torch.tensor([prompt + tokens])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].numpy()


def _check_against_reference(settings: GenerationSettings) -> None:
    for case, (seed, prompt, eos) in enumerate(_cases()):
        expected_tokens, expected_score = _reference(case, settings)
        results: list[GenerationResult] = [
            generate(steps(_model(seed)), prompt, settings, eos_token_id=eos, pad_token_id=PAD)
            for steps in (CachedSteps, RecomputeSteps)
        ]
        for result in results:
            assert result.token_ids == expected_tokens, f"seed {seed}, prompt {prompt}, eos {eos}"
            np.testing.assert_allclose(
                result.token_logprobs, _raw_logprobs(seed, prompt, expected_tokens), rtol=0, atol=1e-5
            )
            if expected_score is None:
                assert result.score == pytest.approx(sum(result.token_logprobs), abs=1e-6)
            else:
                assert result.score == pytest.approx(expected_score, abs=1e-4)
        cached, recomputed = results
        assert cached.score == pytest.approx(recomputed.score, abs=1e-5)


@pytest.mark.parametrize("settings", GREEDY_GRID, ids=_settings_id)
def test_greedy_matches_transformers(settings: GenerationSettings) -> None:
    _check_against_reference(settings)


@pytest.mark.parametrize("settings", BEAM_GRID, ids=_settings_id)
def test_beam_search_matches_transformers(settings: GenerationSettings) -> None:
    _check_against_reference(settings)


def test_grid_exercises_every_path() -> None:
    """The grid above must reach early eos, max length, and outputs that each setting changes; else it proves little."""
    # Runs after the parity tests, whose references are cached, so this costs nothing in a full run.
    outputs = {(case, s): _reference(case, s)[0] for case in range(len(_cases())) for s in GREEDY_GRID + BEAM_GRID}
    eos_of = {case: eos for case, (_, _, eos) in enumerate(_cases())}
    early_eos = [k for k, tokens in outputs.items() if tokens[-1] == eos_of[k[0]] and len(tokens) < MAX_NEW]
    full_length = [k for k, tokens in outputs.items() if len(tokens) == MAX_NEW]
    assert any(s.num_beams == 1 for _, s in early_eos) and any(s.num_beams > 1 for _, s in early_eos)
    assert any(s.num_beams == 1 for _, s in full_length) and any(s.num_beams > 1 for _, s in full_length)

    def changes(name: str, base: object, other: object) -> bool:
        """Whether switching setting `name` from base to other changes some output in the grid."""
        return any(
            outputs.get((case, dataclasses.replace(s, **{name: other}))) not in (None, tokens)
            for (case, s), tokens in outputs.items()
            if getattr(s, name) == base
        )

    assert changes("repetition_penalty", 1.0, 1.3)
    assert changes("no_repeat_ngram_size", 0, 2)
    assert changes("length_penalty", 1.0, 0.6) and changes("length_penalty", 1.0, 2.0)
    assert changes("early_stopping", False, True) and changes("early_stopping", False, "never")
    assert changes("min_new_tokens", 0, 6) and changes("min_new_tokens", 0, 4)  # greedy; beam search
    assert changes("num_beams", 1, 2)


@pytest.mark.parametrize("penalty", [0.7, 1.3])
@pytest.mark.parametrize("ngram", [0, 1, 2, 3])
def test_processors_match_transformers(penalty: float, ngram: int) -> None:
    """The processor chain alone, on sequences with many repeats, equals transformers' processors in its order."""
    # Tests the private helper directly: penalties below 1 and 1- or 3-grams are cheap to cover here, costly above.
    rng = np.random.default_rng(ngram)
    sequences = rng.integers(0, 6, size=(3, 9))  # 6 distinct tokens in 9 positions: n-grams repeat
    scores = rng.normal(size=(3, 12)).astype(np.float32)  # both signs, for the penalty's two branches
    prompt_len, eos = 4, 7
    settings = GenerationSettings(repetition_penalty=penalty, no_repeat_ngram_size=ngram, min_new_tokens=6)
    reference = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(penalty)])
    if ngram:
        reference.append(NoRepeatNGramLogitsProcessor(ngram))
    reference.append(MinNewTokensLengthLogitsProcessor(prompt_len, 6, eos))
    expected = reference(torch.from_numpy(sequences), torch.from_numpy(scores.copy())).numpy()
    np.testing.assert_array_equal(_process(scores, sequences, prompt_len, settings, eos), expected)


@pytest.mark.parametrize(
    "prompt, settings",
    [
        ([], GenerationSettings()),
        ([1], GenerationSettings(max_new_tokens=0)),
        ([1], GenerationSettings(num_beams=0)),
        ([1], GenerationSettings(early_stopping="always")),
        ([1], GenerationSettings(repetition_penalty=0.0)),
    ],
)
def test_bad_settings_are_refused(prompt: list[int], settings: GenerationSettings) -> None:
    with pytest.raises(ValueError):
        generate(RecomputeSteps(_model(0)), prompt, settings, eos_token_id=1, pad_token_id=PAD)
