"""Erlang C (M/M/n) and Erlang A (M/M/n+M) staffing arithmetic.

Both models: Poisson arrivals at rate ``lam`` (calls per second), exponential handle times with
mean ``aht`` seconds (service rate ``mu = 1/aht``), ``agents`` identical agents, one first-come
first-served queue. Offered load ``A = lam * aht`` Erlangs.

Erlang C assumes infinitely patient callers. Erlang A (Palm's model, Garnett/Mandelbaum/Reiman
2002) adds exponential patience with mean ``patience`` seconds (abandonment rate
``theta = 1/patience``): a caller still waiting when patience runs out hangs up.

Erlang A is computed exactly, not by an approximation: the number of callers in the system is a
birth-death chain (birth ``lam``; death ``k*mu`` for ``k <= n`` and ``n*mu + (k-n)*theta`` above),
solved for its stationary distribution and truncated where the remaining probability mass is
below 1e-16. The waiting-time distribution of a caller who arrives behind ``j`` others is the
absorption time of a small chain (the line in front shrinks at ``n*mu + i*theta`` while ``i``
are ahead; the caller abandons at ``theta``), evaluated by uniformization, which is exact up to
the truncation of a Poisson sum at 1e-16.

Definitions (the simulator reports the same quantities under the same names):

- ``p_wait``: probability that an arriving caller finds all agents busy and has to wait.
- ``service_level``: fraction of all arriving callers answered within ``threshold`` seconds.
  For Erlang C every caller is eventually answered; for Erlang A callers who abandon count in
  the denominator and never in the numerator.
- ``asa``: average wait in queue over all callers (answered callers' wait to answer, abandoned
  callers' wait to abandonment; zero for those answered at once). For Erlang C this is the
  classic average speed of answer; for Erlang A it equals ``E[queue length] / lam`` by Little's
  law, which is the figure contact-center tables print.
- ``abandonment``: fraction of arriving callers who abandon (Erlang A only).
- ``occupancy``: fraction of agent time spent handling calls (carried load / agents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPS = 1e-16


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Steady-state figures of one queue; see the module docstring for each definition."""

    p_wait: float
    service_level: float
    asa: float
    occupancy: float
    abandonment: float = 0.0


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/n/n, by the numerically stable recursion on ``n``."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must be non-negative")
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, lam: float, aht: float, threshold: float) -> QueueMetrics:
    """Erlang C figures for ``agents`` agents; the load must be below the number of agents.

    ``p_wait = n*B / (n - A*(1-B))`` with ``B`` the Erlang B blocking probability;
    ``service_level = 1 - p_wait * exp(-(n - A) * threshold / aht)``;
    ``asa = p_wait * aht / (n - A)``; ``occupancy = A / n``.
    """
    load = lam * aht
    if agents <= load:
        raise ValueError(f"unstable: {load:.3f} Erlangs offered to {agents} agents")
    b = erlang_b(agents, load)
    p_wait = agents * b / (agents - load * (1.0 - b))
    margin = agents - load
    return QueueMetrics(
        p_wait=p_wait,
        service_level=1.0 - p_wait * math.exp(-margin * threshold / aht),
        asa=p_wait * aht / margin,
        occupancy=load / agents,
    )


def agents_for_service_level(
    lam: float, aht: float, threshold: float, target: float, max_agents: int = 10_000
) -> int:
    """Smallest number of agents whose Erlang C service level reaches ``target``."""
    n = max(1, math.floor(lam * aht) + 1)
    while n <= max_agents:
        if erlang_c(n, lam, aht, threshold).service_level >= target:
            return n
        n += 1
    raise ValueError("target not reachable within max_agents")


def _stationary(agents: int, lam: float, mu: float, theta: float) -> list[float]:
    """Stationary distribution of the M/M/n+M birth-death chain, truncated at mass 1e-16."""
    weights = [1.0]
    k = 0
    total = 1.0
    while True:
        k += 1
        death = k * mu if k <= agents else agents * mu + (k - agents) * theta
        w = weights[-1] * lam / death
        weights.append(w)
        total += w
        # Past the agents the weights fall (with patience, super-geometrically); stop once the
        # tail cannot matter. Rescale when large so nothing overflows for big pools.
        if k > agents and death > lam and w < _EPS * total:
            break
        if total > 1e250:
            weights = [x / total for x in weights]
            total = 1.0
        if k > agents + 1_000_000:
            raise ValueError("chain does not converge")
    return [w / total for w in weights]


def _served_within(agents: int, mu: float, theta: float, ahead: int, t: float) -> list[float]:
    """P(answered within ``t``) for a caller who arrives with ``i`` callers ahead, i=0..ahead.

    Backward uniformization over the chain "``i`` ahead" (``i`` -> ``i-1`` at
    ``n*mu + i*theta``; from 0 the caller is answered; abandonment at ``theta`` from every
    state): ``f(t) = sum_m Poisson(m; L*t) * P^m 1_answered``.
    """
    rate_max = agents * mu + ahead * theta + theta
    if t <= 0:
        return [0.0] * (ahead + 1)
    x = rate_max * t
    # Vector v_m[i] = P(answered within m uniformized steps | i ahead); v_0 = 0 for all i.
    v = [0.0] * (ahead + 1)
    result = [0.0] * (ahead + 1)
    # Poisson weights computed iteratively in log space to survive large x.
    log_w = -x
    cumulative = 0.0
    m = 0
    while True:
        w = math.exp(log_w)
        for i in range(ahead + 1):
            result[i] += w * v[i]
        cumulative += w
        if m > x and 1.0 - cumulative < _EPS:
            break
        # One uniformized step: v_{m+1} = P v_m.
        nxt = [0.0] * (ahead + 1)
        for i in range(ahead + 1):
            forward = (agents * mu + i * theta) / rate_max
            stay = 1.0 - forward - theta / rate_max
            nxt[i] = forward * (1.0 if i == 0 else v[i - 1]) + stay * v[i]
        v = nxt
        m += 1
        log_w += math.log(x) - math.log(m)
        if m > 10 * x + 1000:
            break
    return result


def erlang_a(
    agents: int, lam: float, aht: float, patience: float, threshold: float
) -> QueueMetrics:
    """Exact Erlang A figures for mean patience ``patience`` seconds (see module docstring)."""
    if patience <= 0:
        raise ValueError("patience must be positive")
    mu = 1.0 / aht
    theta = 1.0 / patience
    pi = _stationary(agents, lam, mu, theta)
    p_wait = sum(pi[agents:])
    queue_len = sum((k - agents) * p for k, p in enumerate(pi) if k > agents)
    busy = sum(min(k, agents) * p for k, p in enumerate(pi))
    ahead_max = len(pi) - 1 - agents
    served = _served_within(agents, mu, theta, max(ahead_max, 0), threshold)
    sl = sum(pi[:agents]) + sum(pi[agents + j] * served[j] for j in range(ahead_max + 1))
    return QueueMetrics(
        p_wait=p_wait,
        service_level=sl,
        asa=queue_len / lam,
        occupancy=busy / agents,
        abandonment=theta * queue_len / lam,
    )
