"""Text generation from any decoder graph: greedy and beam search in numpy, token for token what transformers does.

Captioning and question answering run their text decoder one token at a time, through ONNX Runtime or PyTorch. The
loop around the decoder (which token comes next, which beams survive, when to stop) is the same whatever runs the
graph, so it lives here once and talks to the graph through three calls (`DecoderSteps`): `prefill` the prompt,
`step` one token, and `reorder` the key/value cache when beams swap rows.

The loop reproduces transformers 5's `generate(do_sample=False)`: greedy search (`_sample`) and beam search
(`_beam_search` with its helpers), the logits processors that `_get_logits_processor` builds for the settings below,
in the same order, and its stopping criteria (max length, eos). Scores are kept in float32 and combined in the same
order as transformers, so that near-ties break the same way and a test can compare token ids exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# transformers masks beams it wants out of a top-k with this additive constant (not -inf, so sums stay finite).
_MASKED = np.float32(-1.0e9)


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode; the names and meanings are transformers' `GenerationConfig` ones.

    Attributes:
        max_new_tokens: Tokens generated at most, eos included.
        num_beams: 1 for greedy search; more for beam search with that many beams.
        repetition_penalty: Divides positive (multiplies negative) scores of tokens already in the sequence, prompt
            included; 1.0 is off. Captions repeat themselves without it.
        no_repeat_ngram_size: Bans any token that would repeat an n-gram of this size (prompt included); 0 is off.
        length_penalty: Beam search only: a finished beam's summed log-probability is divided by its generated
            length to this power, so above 0 favours longer captions and below 0 shorter ones.
        early_stopping: Beam search only. True: stop once `num_beams` beams have finished. False: stop when a
            heuristic says no running beam can beat the finished ones. "never": stop only when no beam can possibly
            beat them (the canonical beam search, with `length_penalty` 0).
        min_new_tokens: eos is banned until this many tokens have been generated.
    """

    max_new_tokens: int = 20
    num_beams: int = 1  # 1 = greedy
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0  # beam search only
    early_stopping: bool | str = False  # as in transformers: True, False, or "never"
    min_new_tokens: int = 0


@dataclass
class GenerationResult:
    """The best sequence found.

    Attributes:
        token_ids: The generated tokens only (prompt excluded), eos included when it was generated.
        token_logprobs: For each generated token, its log-probability under the raw model logits (before any
            processor): how sure the model itself was, whatever penalties steered the search.
        score: Greedy: the sum of `token_logprobs`. Beam search: the final beam score as transformers computes it
            (`sequences_scores`: processed log-probabilities summed, divided by length ** length_penalty).
    """

    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    score: float = 0.0


class DecoderSteps(Protocol):
    """A decoder graph with a key/value cache, seen as three calls. The cache state is opaque to the loop."""

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, object]:
        """Runs the prompt: input_ids (B, T) int64 -> logits of the last position (B, V), and the cache state."""
        ...

    def step(self, input_ids: np.ndarray, state: object) -> tuple[np.ndarray, object]:
        """Runs one new token per row: input_ids (B, 1) int64 -> logits (B, V), and the new cache state."""
        ...

    def reorder(self, state: object, beam_index: np.ndarray) -> object:
        """Returns the cache whose row i is row beam_index[i] of `state` (beam search moves beams between rows)."""
        ...


def generate(
    steps: DecoderSteps,
    prompt_ids: list[int],
    settings: GenerationSettings,
    eos_token_id: int | tuple[int, ...] | list[int],
    pad_token_id: int,
    on_token: Callable[[int, float], bool] | None = None,
) -> GenerationResult:
    """Decodes one prompt greedily or with beam search, as transformers' `generate(do_sample=False)` would.

    Args:
        steps: The decoder. For beam search it sees `num_beams` rows: the prompt is repeated before `prefill`.
        prompt_ids: The prompt's token ids (at least one), e.g. a BOS token or a question.
        settings: Search and logits-processing settings.
        eos_token_id: The token that ends a sequence, or several (greedy search stops at any of them, as
            transformers does with a list; beam search takes the first).
        pad_token_id: Accepted for parity with transformers; it only fills the unused tail of beam buffers and never
            appears in a result.
        on_token: Greedy search only: called with each new token and its raw log-probability as soon as it is
            chosen (streaming); returning False stops generation there, keeping the tokens so far.

    Returns:
        The best sequence: its tokens, their raw log-probabilities, and its score.

    Raises:
        ValueError: If the prompt is empty or a setting is out of range.
    """
    _check(prompt_ids, settings)
    eos_ids = tuple(eos_token_id) if isinstance(eos_token_id, (tuple, list)) else (eos_token_id,)
    if settings.num_beams == 1:
        return _greedy_search(steps, prompt_ids, settings, eos_ids, on_token)
    return _beam_search(steps, prompt_ids, settings, eos_ids[0], pad_token_id)


def _check(prompt_ids: list[int], settings: GenerationSettings) -> None:
    """Raises ValueError for settings transformers would refuse or that make no sense here."""
    if len(prompt_ids) == 0:
        raise ValueError("Generation needs a prompt of at least one token (e.g. the BOS token).")
    if settings.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, not {settings.max_new_tokens}.")
    if settings.num_beams < 1:
        raise ValueError(f"num_beams must be at least 1, not {settings.num_beams}.")
    if not settings.repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be positive, not {settings.repetition_penalty}.")
    if settings.no_repeat_ngram_size < 0 or settings.min_new_tokens < 0:
        raise ValueError("no_repeat_ngram_size and min_new_tokens cannot be negative.")
    if settings.early_stopping not in (True, False, "never"):
        raise ValueError(f'early_stopping must be True, False or "never", not {settings.early_stopping!r}.')


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32, shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _process(
    scores: np.ndarray, sequences: np.ndarray, prompt_len: int, settings: GenerationSettings, eos: int | tuple
) -> np.ndarray:
    """Applies the enabled logits processors to (B, V) scores, given each row's tokens so far (B, T)."""
    # Same order as transformers' _get_logits_processor: repetition penalty, no-repeat n-gram, min new tokens. (For
    # these three the order happens not to change the result, as the penalty keeps -inf at -inf; a processor added
    # later must still go where transformers puts it.)
    scores = scores.copy()
    vocab_size = scores.shape[1]
    if settings.repetition_penalty != 1.0:
        # Every token present anywhere in the row (prompt included) is penalized once, however often it occurs:
        # gathering then scattering back writes the same value for each duplicate. Ids past the output vocabulary
        # (an embedding table larger than the head) cannot be generated, so there is nothing to penalize.
        rows, positions = np.nonzero(sequences < vocab_size)
        tokens = sequences[rows, positions]
        penalty = np.float32(settings.repetition_penalty)
        seen = scores[rows, tokens]
        # Dividing a negative score would raise it, so negatives are multiplied instead: both lower the token.
        scores[rows, tokens] = np.where(seen < 0, seen * penalty, seen / penalty)
    n = settings.no_repeat_ngram_size
    if n > 0 and sequences.shape[1] >= n:
        # The next token completes an n-gram whose first n-1 tokens are the row's current suffix; every earlier
        # window starting with that suffix bans its own last token.
        windows = np.lib.stride_tricks.sliding_window_view(sequences, n, axis=1)  # (B, T - n + 1, n)
        suffix = sequences[:, sequences.shape[1] - (n - 1) :]
        matches = (windows[..., :-1] == suffix[:, None, :]).all(axis=-1) & (windows[..., -1] < vocab_size)
        rows, starts = np.nonzero(matches)
        scores[rows, windows[rows, starts, -1]] = -np.inf
    if sequences.shape[1] - prompt_len < settings.min_new_tokens:
        scores[:, list(eos) if isinstance(eos, tuple) else eos] = -np.inf
    return scores


def _greedy_search(
    steps: DecoderSteps,
    prompt_ids: list[int],
    settings: GenerationSettings,
    eos: tuple[int, ...],
    on_token: Callable[[int, float], bool] | None = None,
) -> GenerationResult:
    """Picks the highest processed score at each step until eos or max_new_tokens (transformers' `_sample`)."""
    sequence = np.asarray([prompt_ids], dtype=np.int64)
    logits, state = steps.prefill(sequence)
    result = GenerationResult()
    for produced in range(1, settings.max_new_tokens + 1):
        # Greedy search processes the raw logits (not log-probabilities): with a repetition penalty the choice can
        # differ, since dividing a logit is not dividing its log-probability.
        logits = np.asarray(logits, dtype=np.float32)
        scores = _process(logits, sequence, len(prompt_ids), settings, eos)
        token = int(np.argmax(scores[0]))  # ties go to the lowest id, as with torch.argmax
        result.token_ids.append(token)
        result.token_logprobs.append(float(_log_softmax(logits[0])[token]))
        sequence = np.concatenate([sequence, [[token]]], axis=1)
        wanted = on_token(token, result.token_logprobs[-1]) if on_token is not None else True
        if token in eos or produced == settings.max_new_tokens or wanted is False:
            break
        logits, state = steps.step(np.asarray([[token]], dtype=np.int64), state)
    result.score = float(np.sum(result.token_logprobs, dtype=np.float64))
    return result


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, best first; ties go to the lower index (torch.topk promises no order)."""
    if k < values.size:
        # argpartition keeps this linear in num_beams * vocab_size; only the k survivors get sorted.
        candidates = np.argpartition(-values, k - 1)[:k]
    else:
        candidates = np.arange(values.size)
    return candidates[np.lexsort((candidates, -values[candidates]))]


def _length_divisor(length: int, length_penalty: float) -> np.float32:
    """length ** length_penalty, computed in double and rounded to float32 as torch does for a Python scalar."""
    return np.float32(length**length_penalty)


def _beam_search(
    steps: DecoderSteps, prompt_ids: list[int], settings: GenerationSettings, eos: int, pad: int
) -> GenerationResult:
    """Beam search as transformers 5's `_beam_search` for one prompt (its batch dimension of 1 dropped)."""
    num_beams = settings.num_beams
    prompt_len = len(prompt_ids)
    max_length = prompt_len + settings.max_new_tokens
    lp = settings.length_penalty
    early_stopping = settings.early_stopping
    # Twice as many candidates as beams (one eos token + 1): even if every beam's best continuation is eos and
    # finishes, num_beams unfinished candidates remain to keep searching with.
    beams_to_keep = 2 * num_beams

    # Running beams: token buffers (unused tail = pad), summed processed log-probabilities, and the raw log-prob of
    # each generated token (for GenerationResult.token_logprobs).
    running_ids = np.full((num_beams, max_length), pad, dtype=np.int64)
    running_ids[:, :prompt_len] = prompt_ids
    # Only beam 0 starts live; the copies start at -1e9 so the first step does not pick the same token num_beams times.
    running_scores = np.full(num_beams, _MASKED, dtype=np.float32)
    running_scores[0] = 0.0
    running_raw = np.zeros((num_beams, settings.max_new_tokens), dtype=np.float32)

    # Finished hypotheses, kept sorted best first; -1e9 marks an empty slot.
    finished_ids = running_ids.copy()
    finished_scores = np.full(num_beams, _MASKED, dtype=np.float32)
    finished_raw = running_raw.copy()
    finished_len = np.zeros(num_beams, dtype=np.int64)
    is_finished = np.zeros(num_beams, dtype=bool)

    logits, state = steps.prefill(running_ids[:, :prompt_len].copy())
    cur_len = prompt_len
    while True:
        raw_logprobs = _log_softmax(np.asarray(logits, dtype=np.float32))
        # Beam search processes log-probabilities (greedy processes logits): same processors, other input.
        logprobs = _process(raw_logprobs, running_ids[:, :cur_len], prompt_len, settings, eos)
        vocab_size = logprobs.shape[1]
        totals = (logprobs + running_scores[:, None]).reshape(-1)

        # Best continuations over all beams at once; a flat index encodes (source beam, token).
        flat = _top_k(totals, beams_to_keep)
        cand_scores = totals[flat]
        cand_source = flat // vocab_size
        cand_tokens = flat % vocab_size
        cand_ids = running_ids[cand_source]
        cand_ids[:, cur_len] = cand_tokens
        cand_raw = running_raw[cand_source]
        cand_raw[:, cur_len - prompt_len] = raw_logprobs[cand_source, cand_tokens]
        # Stopping criteria per candidate: it ends in eos, or it has reached max_length.
        cand_done = (cand_tokens == eos) | (cur_len + 1 >= max_length)

        # The best num_beams unfinished candidates run on; finished ones are pushed out with -1e9.
        running_pool = cand_scores + cand_done.astype(np.float32) * _MASKED
        keep = _top_k(running_pool, num_beams)
        running_ids, running_scores, running_raw = cand_ids[keep], running_pool[keep], cand_raw[keep]
        beam_index = cand_source[keep]

        # Only candidates among the top num_beams may join the finished hypotheses; the rest were backups.
        just_finished = cand_done.copy()
        just_finished[num_beams:] = False
        # The penalized length is the generated length, eos included.
        new_scores = cand_scores / _length_divisor(cur_len + 1 - prompt_len, lp)
        # transformers also bars new hypotheses once every slot is full (early_stopping=True) or nothing can improve;
        # with a single prompt both end the loop below before another step, so there is nothing to bar here.
        new_scores = new_scores + (~just_finished).astype(np.float32) * _MASKED
        # Merge old and new (old first, so an exact tie keeps the older one) and keep the best num_beams.
        merged = _top_k(np.concatenate([finished_scores, new_scores]), num_beams)
        finished_ids = np.concatenate([finished_ids, cand_ids])[merged]
        finished_scores = np.concatenate([finished_scores, new_scores])[merged]
        finished_raw = np.concatenate([finished_raw, cand_raw])[merged]
        cand_len = np.full(beams_to_keep, cur_len + 1 - prompt_len, dtype=np.int64)
        finished_len = np.concatenate([finished_len, cand_len])[merged]
        is_finished = np.concatenate([is_finished, just_finished])[merged]

        cur_len += 1
        # Stop when no running beam can beat the finished hypotheses (transformers' heuristic), when every slot holds
        # a finished hypothesis and early_stopping=True, or when every candidate has reached max_length.
        if (
            not _running_beams_may_improve(
                running_scores[0], finished_scores, is_finished, cur_len, max_length, prompt_len, settings
            )
            or (early_stopping is True and is_finished.all())
            or cand_done.all()
        ):
            break
        state = steps.reorder(state, beam_index)
        logits, state = steps.step(running_ids[:, cur_len - 1 : cur_len].copy(), state)

    if not is_finished[0]:
        # transformers would return an empty slot here; that only happens when every candidate scored -inf (e.g. an
        # n-gram ban on a tiny vocabulary), so return the best candidate of the last step instead.
        length = cur_len - prompt_len
        return GenerationResult(
            token_ids=cand_ids[0, prompt_len:cur_len].tolist(),
            token_logprobs=cand_raw[0, :length].tolist(),
            score=float(cand_scores[0] / _length_divisor(length, lp)),
        )
    length = int(finished_len[0])
    return GenerationResult(
        token_ids=finished_ids[0, prompt_len : prompt_len + length].tolist(),
        token_logprobs=finished_raw[0, :length].tolist(),
        score=float(finished_scores[0]),
    )


def _running_beams_may_improve(
    best_running_score: np.float32,
    finished_scores: np.ndarray,
    is_finished: np.ndarray,
    cur_len: int,
    max_length: int,
    prompt_len: int,
    settings: GenerationSettings,
) -> bool:
    """transformers' early-stop heuristic: can the best running beam still beat the worst finished hypothesis?"""
    lp = settings.length_penalty
    # Scores only fall as tokens are added, but dividing by length ** lp can raise them. early_stopping="never"
    # with lp > 0 assumes the best case, running to max_length; otherwise the current length is assumed (a
    # heuristic that transformers keeps for backward compatibility).
    if settings.early_stopping == "never" and lp > 0.0:
        hypothetical_length = max_length - prompt_len
    else:
        hypothetical_length = cur_len - prompt_len
    best_possible = best_running_score / _length_divisor(hypothetical_length, lp)
    # An empty slot counts as -1e9, which any real running beam beats: search goes on until num_beams have finished.
    worst_finished = np.where(is_finished, finished_scores.min(), _MASKED)
    return bool(np.any(best_possible > worst_finished))
