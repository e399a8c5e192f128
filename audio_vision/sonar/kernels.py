# SPDX-License-Identifier: Apache-2.0
"""Compiled inner loops of the sonar front-end (numba): the back-projection that scores image and point
hypotheses, fused into one pass per hypothesis (distance to each mic -> arrival time -> linear interpolation
of that mic's matched-filter signal -> sum over mics).

Written once in numpy the same loop made a (K, C) array at every step (squared distances, delays, indices,
fractions, two gathers, the interpolation) and was a third of the front-end's time; the arithmetic here is
the same, in the same order per term. ``cache=True`` keeps the machine code beside this file, so only the
first process after an install pays the compilation (about a second).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _interpolate(rows, c, idx):
    """Linear interpolation of the circular row ``rows[c]`` (complex or real: then the imaginary part is 0) at
    fractional index ``idx``, as a complex number (the row by its index: a view of it made per call cost the
    back-projection more than half again)."""
    n = rows.shape[1]
    f = math.floor(idx)
    frac = idx - f
    i0 = int(f)
    if i0 < 0 or i0 >= n:                     # circular; an index is almost always inside the row already
        i0 %= n
    i1 = i0 + 1
    if i1 == n:
        i1 = 0
    # Real and imaginary parts weighted apart: a complex sample times a real weight as a complex product would also
    # form the cross terms with the weight's zero imaginary part (IEEE keeps them: inf, signed zeros). The same
    # values (bar the sign of an exact zero), a tenth less time in the back-projection.
    a, b, w = rows[c, i0], rows[c, i1], 1.0 - frac
    return complex(a.real * w + b.real * frac, a.imag * w + b.imag * frac)


@njit(cache=True, nogil=True)
def backproject(rows, mics, points, extra_s, rate, inv_c):
    """``rows`` (C, L) each mic's signal at ``rate`` samples / s, circular, the emission at sample 0: the complex
    analytic signal (coherent: the modulus of the sum) or its modulus, the envelope (incoherent: the sum of the
    moduli); ``points`` (K, 3) positions whose arrival at mic m is ``|x - p_m| / c + extra_s[k]`` after the
    emission -> (K,) modulus of the mean over mics of the rows there.

    Per point in two passes: the mics' fractional sample indices first (straight-line arithmetic the compiler
    vectorises across mics), then the gathers and the interpolation; the same operations in the same order per
    term as one fused pass, so the same values."""
    k_count, c_count = points.shape[0], mics.shape[0]
    out = np.empty(k_count)
    mx, my, mz = mics[:, 0].copy(), mics[:, 1].copy(), mics[:, 2].copy()
    index = np.empty(c_count)
    for k in range(k_count):
        x0, x1, x2 = points[k, 0], points[k, 1], points[k, 2]
        extra = extra_s[k]
        for c in range(c_count):
            d0, d1, d2 = x0 - mx[c], x1 - my[c], x2 - mz[c]
            index[c] = (math.sqrt(d0 * d0 + d1 * d1 + d2 * d2) * inv_c + extra) * rate
        acc = 0j
        for c in range(c_count):
            acc += _interpolate(rows, c, index[c])
        out[k] = abs(acc) / c_count
    return out


@njit(cache=True, nogil=True)
def backproject_envelope(rows, mics, points, extra_s, rate, inv_c):
    """:func:`backproject` of real ``rows`` (the envelope: incoherent, the sum of the moduli) in real arithmetic: the
    complex sum of their zero imaginary parts gives the same values, and forming them took half its time (the floor's
    and ceiling's range profiles, thousands of points a window)."""
    k_count, c_count, n = points.shape[0], mics.shape[0], rows.shape[1]
    out = np.empty(k_count)
    mx, my, mz = mics[:, 0].copy(), mics[:, 1].copy(), mics[:, 2].copy()
    index = np.empty(c_count)
    for k in range(k_count):
        x0, x1, x2, extra = points[k, 0], points[k, 1], points[k, 2], extra_s[k]
        for c in range(c_count):
            d0, d1, d2 = x0 - mx[c], x1 - my[c], x2 - mz[c]
            index[c] = (math.sqrt(d0 * d0 + d1 * d1 + d2 * d2) * inv_c + extra) * rate
        acc = 0.0
        for c in range(c_count):       # _interpolate's indices and weights
            f = math.floor(index[c])
            frac = index[c] - f
            i0 = int(f)
            if i0 < 0 or i0 >= n:
                i0 %= n
            i1 = i0 + 1 if i0 + 1 < n else 0
            acc += rows[c, i0] * (1.0 - frac) + rows[c, i1] * frac
        out[k] = abs(acc) / c_count
    return out


@njit(cache=True, nogil=True)
def _mirror(x0, x1, x2, n0, n1, n2, offset):
    """The point mirrored across {x : n . x = offset}: ``echoes.image_of``'s arithmetic, term for term."""
    t = 2.0 * (offset - (x0 * n0 + x1 * n1 + x2 * n2))
    return x0 + t * n0, x1 + t * n1, x2 + t * n2


@njit(cache=True, nogil=True)
def _coherent_at(rows, mx, my, mz, index, x0, x1, x2, rate, inv_c):
    """One point's :func:`backproject` (no extra delay): the modulus of the mean over mics of the rows there; as there,
    the mics' sample indices first (into ``index``, (C,) scratch), then the gathers."""
    c_count = mx.shape[0]
    for c in range(c_count):
        d0, d1, d2 = x0 - mx[c], x1 - my[c], x2 - mz[c]
        index[c] = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2) * inv_c * rate
    acc = 0j
    for c in range(c_count):
        acc += _interpolate(rows, c, index[c])
    return abs(acc) / c_count


@njit(cache=True, nogil=True)
def wall_evidence(rows, mics, speaker, normals, offsets, vertical_normals, vertical_offsets, rate, inv_c):
    """The exact evidence of vertical walls, ``normals`` (K, 3) unit, ``offsets`` (K,) their distances -> (K,) the
    coherent back-projection (:func:`backproject`) of each wall's first-order image (the speaker mirrored across it)
    plus those of its corner images with each horizontal plane (``vertical_normals`` (V, 3), ``vertical_offsets``
    (V,)), summed in that order: what building the images in numpy and scoring them gives, to the bit, without an
    array per grid and image."""
    out = np.empty(offsets.shape[0])
    mx, my, mz = mics[:, 0].copy(), mics[:, 1].copy(), mics[:, 2].copy()
    index = np.empty(mics.shape[0])
    for k in range(offsets.shape[0]):
        out[k] = _wall_at(rows, mx, my, mz, index, speaker, normals[k], offsets[k], vertical_normals, vertical_offsets,
                          rate, inv_c)
    return out


@njit(cache=True, nogil=True)
def _wall_at(rows, mx, my, mz, index, speaker, normal, offset, vertical_normals, vertical_offsets, rate, inv_c):
    """One wall's :func:`wall_evidence` (the mics' coordinates as columns, ``index`` (C,) scratch)."""
    x0, x1, x2 = _mirror(speaker[0], speaker[1], speaker[2], normal[0], normal[1], normal[2], offset)
    total = _coherent_at(rows, mx, my, mz, index, x0, x1, x2, rate, inv_c)
    for v in range(vertical_offsets.shape[0]):
        y0, y1, y2 = _mirror(x0, x1, x2, vertical_normals[v, 0], vertical_normals[v, 1], vertical_normals[v, 2],
                             vertical_offsets[v])
        total += _coherent_at(rows, mx, my, mz, index, y0, y1, y2, rate, inv_c)
    return total


@njit(cache=True, nogil=True)
def _parabola_offset(row, k):
    """``echoes.parabola_offset`` at an interior k, the same arithmetic."""
    a, b, c = row[k - 1], row[k], row[k + 1]
    den = a - 2.0 * b + c
    return 0.0 if den >= 0 else min(max(0.5 * (a - c) / den, -0.5), 0.5)


@njit(cache=True, nogil=True)
def refine_walls(rows, mics, speaker, normals, r0, steps, vertical_normals, vertical_offsets, rate, inv_c):
    """Each beam peak's best exact wall evidence (:func:`wall_evidence`) on its grid of azimuths x ranges, coarse to
    fine (every other point of both; then 5 azimuths x 7 ranges of the full grid around that maximum, kept inside the
    grid): ``normals`` (P, A, 3) the peak's azimuth grid as unit normals, ``r0`` (P,) its range, ``steps`` (R,) the
    range grid's offsets -> (evidence (P,), azimuth index (P,), range index (P,), shift (P,)): the offset is
    r0 + steps[range index] + shift x step, shift from a parabola through the maximum and its range neighbours (where
    the maximum is on the fine window's edge inside the grid, its outer neighbour is formed for it; 0 on the grid's
    edge). What LayoutEstimator._refine_walls did in numpy steps, one call for all peaks."""
    p_count, a_count, r_count = normals.shape[0], normals.shape[1], steps.shape[0]
    ca, cr = (a_count + 1) // 2, (r_count + 1) // 2
    evidence = np.empty(p_count)
    best_a = np.empty(p_count, dtype=np.int64)
    best_r = np.empty(p_count, dtype=np.int64)
    shift = np.zeros(p_count)
    mx, my, mz = mics[:, 0].copy(), mics[:, 1].copy(), mics[:, 2].copy()
    index = np.empty(mics.shape[0])
    fine = np.empty((5, 7))
    for p in range(p_count):
        top, ti, tj = -np.inf, 0, 0
        for i in range(ca):
            for j in range(cr):
                v = _wall_at(rows, mx, my, mz, index, speaker, normals[p, 2 * i], r0[p] + steps[2 * j],
                             vertical_normals, vertical_offsets, rate, inv_c)
                if v > top:
                    top, ti, tj = v, i, j
        a0 = min(max(2 * ti - 2, 0), a_count - 5)
        r1 = min(max(2 * tj - 3, 0), r_count - 7)
        top, fi, fj = -np.inf, 0, 0
        for i in range(5):
            for j in range(7):
                v = _wall_at(rows, mx, my, mz, index, speaker, normals[p, a0 + i], r0[p] + steps[r1 + j],
                             vertical_normals, vertical_offsets, rate, inv_c)
                fine[i, j] = v
                if v > top:
                    top, fi, fj = v, i, j
        evidence[p], best_a[p], best_r[p] = top, a0 + fi, r1 + fj
        if 0 < fj < 6:
            shift[p] = _parabola_offset(fine[fi], fj)
        elif 0 < r1 + fj < r_count - 1:          # on the fine window's edge: the outer neighbour along range
            row = np.empty(3)
            for m in range(3):
                row[m] = fine[fi, fj - 1 + m] if 0 <= fj - 1 + m < 7 else _wall_at(
                    rows, mx, my, mz, index, speaker, normals[p, a0 + fi], r0[p] + steps[r1 + fj - 1 + m],
                    vertical_normals, vertical_offsets, rate, inv_c)
            shift[p] = _parabola_offset(row, 1)
    return evidence, best_a, best_r, shift


@njit(cache=True, nogil=True)
def arrival_phases(f0, df, count, delays):
    """(M,) delays (s) -> (M, count) the phases exp(-2 pi i f tau) of an arrival at tau on the uniform frequency
    grid f = f0 + j df: one complex exponential per delay and a running product along the grid (its rounding
    grows by ~1e-16 a step, ~1e-13 over a band of thousands of bins), where ``np.exp`` on the (M, count)
    arguments was most of the time spent explaining an echo away."""
    out = np.empty((delays.shape[0], count), dtype=np.complex128)
    for m in range(delays.shape[0]):
        tau = delays[m]
        z = complex(math.cos(-2.0 * math.pi * f0 * tau), math.sin(-2.0 * math.pi * f0 * tau))
        w = complex(math.cos(-2.0 * math.pi * df * tau), math.sin(-2.0 * math.pi * df * tau))
        for j in range(count):
            out[m, j] = z
            z *= w
    return out


@njit(cache=True, nogil=True)
def shifted_sum(rows, shifts, lags):
    """(C, L) circular rows, (C,) shifts in samples, (K,) integer lags -> (K,) sum over c of row c at lag + shifts[c]
    (linear interpolation), mic by mic: what the emission-time search sums, without a (K,) gather per mic."""
    c_count = rows.shape[0]
    out = np.zeros(lags.shape[0])
    for c in range(c_count):
        s = shifts[c]
        for i in range(lags.shape[0]):
            out[i] += _interpolate(rows, c, lags[i] + s).real      # real rows: a zero imaginary part
    return out


@njit(cache=True, nogil=True)
def steered_sum(steering, directions, spectrum, bins, out):
    """(D, C, F) far-field phases, the (D',) ``directions`` (indices into D) to form, (C, F) spectrum -> their
    product summed over mics (single precision), written to ``out`` (D', L) at the columns ``bins`` (F,), direction
    by direction: no (D', F) temporary per mic as in numpy (the full azimuth scan's product was as long as its
    inverse FFTs), no copy of a sector's steering. Single-precision rounding differs from numpy's in the last bits
    (~1e-7 relative). A direction's sum is made in a contiguous row and scattered to ``bins`` once: the mics' loops
    then vectorise (the same products and sums in the same order as summing in place at ``bins``; 3x faster). The
    steering is direction-major, so a direction's phases are one contiguous block: the scans read megabytes of it
    that the cache no longer holds, and one stream per direction is read a fifth faster than one per mic."""
    c_count, f_count = steering.shape[1], steering.shape[2]
    row = np.empty(f_count, dtype=out.dtype)
    for i in range(directions.shape[0]):
        d = directions[i]
        first, x = steering[d, 0], spectrum[0]
        for f in range(f_count):
            row[f] = first[f] * x[f]
        for c in range(1, c_count):
            phases, x = steering[d, c], spectrum[c]
            for f in range(f_count):
                row[f] += phases[f] * x[f]
        for f in range(f_count):
            out[i, bins[f]] = row[f]


@njit(cache=True, nogil=True)
def cfar_ratio(beams, cells, k0, k1):
    """(D, L) circular beam moduli -> (ratio, clutter), each (D, k1 - k0): the cells k0 .. k1 - 1 over the mean of
    the ``cells`` (odd) around each, single precision. The mean is ``scipy.ndimage.uniform_filter1d(beams, cells,
    mode='wrap')``'s own arithmetic (a running double-precision sum over the whole row, divided at every cell: the
    same values), without its line buffers and copies."""
    d_count, n = beams.shape
    half = cells // 2
    ratio = np.empty((d_count, k1 - k0), dtype=np.float32)
    clutter = np.empty((d_count, k1 - k0), dtype=np.float32)
    tiny = np.float32(1e-30)
    for d in range(d_count):
        row = beams[d]
        total = 0.0
        for j in range(cells):
            total += np.float64(row[(j - half) % n])
        for i in range(k1):
            if i > 0:
                enter, leave = i + cells - 1 - half, i - 1 - half
                if enter >= n:
                    enter -= n
                if leave < 0:
                    leave += n
                total += np.float64(row[enter]) - np.float64(row[leave])
            if i >= k0:
                mean = np.float32(total / cells)
                clutter[d, i - k0] = mean
                ratio[d, i - k0] = row[i] / (mean + tiny)
    return ratio, clutter


@njit(cache=True, nogil=True)
def local_maxima(block, across_rows):
    """(A, K) -> the flat (row-major) indices of its local maxima: along each row (>= the previous cell, > the next;
    a row's first and last cells always qualify), and with ``across_rows`` also >= the rows above and below
    (circular). What the wall search ranks its candidates from, without five boolean (A, K) temporaries; the tests
    combined without branches (a branch per cell mispredicts on noise and was slower than numpy)."""
    a_count, k_count = block.shape
    mask = np.empty((a_count, k_count), dtype=np.bool_)
    for a in range(a_count):
        row, up, down, m = block[a], block[(a - 1) % a_count], block[(a + 1) % a_count], mask[a]
        m[0] = True
        m[k_count - 1] = True
        for k in range(1, k_count - 1):
            m[k] = (row[k] >= row[k - 1]) & (row[k] > row[k + 1])
        if across_rows:
            for k in range(k_count):
                m[k] = m[k] & (row[k] >= up[k]) & (row[k] >= down[k])
    return np.flatnonzero(mask)


# fastmath: the sums reordered (vectorised), as BLAS reorders them; NaN and inf keep their meaning
@njit(cache=True, nogil=True, fastmath={'reassoc', 'contract'})
def remove_arrivals(spectrum, phases, template, edges):
    """Least-squares removal of K arrivals seen by C mics with one complex amplitude per arrival and band (an echo: the
    same wave at every mic), in place. ``spectrum`` (C, F) the mics' spectra; ``phases`` (C * K, F) each arrival's
    phases at each mic (:func:`arrival_phases`, row c * K + k); ``template`` (F,) the compressed pulse; ``edges``
    (B + 1,) the bands' bin bounds -> (K, B) the amplitudes, their arrivals subtracted from ``spectrum``.

    Per band: the Gram matrix of the arrivals' basis vectors (template x phases over every mic's bins) and their
    projections of the data, the diagonal loaded by 1e-9 of its mean (two arrivals at one delay stay solvable), solved,
    and the fitted sum subtracted: what echoes._remove did in numpy per band, in one call on the calling thread (the
    numpy steps' call overhead was most of the time an echo took to explain; BLAS's threads spun on the core the other
    inference worker needs)."""
    c_count, f_count = spectrum.shape
    k_count = phases.shape[0] // c_count
    b_count = edges.shape[0] - 1
    basis = np.empty_like(phases)                       # (C * K, F): each arrival as each mic hears it
    for m in range(phases.shape[0]):
        for f in range(f_count):
            basis[m, f] = template[f] * phases[m, f]
    amps = np.zeros((k_count, b_count), dtype=np.complex128)
    for b in range(b_count):
        f0, f1 = edges[b], edges[b + 1]
        gram = np.zeros((k_count, k_count), dtype=np.complex128)
        rhs = np.zeros((k_count, 1), dtype=np.complex128)
        for k in range(k_count):
            for j in range(k, k_count):
                acc = 0j
                for c in range(c_count):
                    bk, bj = basis[c * k_count + k], basis[c * k_count + j]
                    for f in range(f0, f1):
                        acc += bk[f].conjugate() * bj[f]
                gram[j, k] = acc.conjugate()
                gram[k, j] = acc if j > k else acc.real        # a Gram matrix's diagonal is real
            acc = 0j
            for c in range(c_count):
                bk, x = basis[c * k_count + k], spectrum[c]
                for f in range(f0, f1):
                    acc += bk[f].conjugate() * x[f]
            rhs[k, 0] = acc
        trace = 0.0
        for k in range(k_count):
            trace += gram[k, k].real
        for k in range(k_count):
            gram[k, k] += 1e-9 * trace / k_count
        amp = np.linalg.solve(gram, rhs)
        fitted = np.empty(f1 - f0, dtype=np.complex128)
        for k in range(k_count):
            amps[k, b] = amp[k, 0]
        for c in range(c_count):
            fitted[:] = 0.0
            for k in range(k_count):
                a, bk = amp[k, 0], basis[c * k_count + k]
                for f in range(f0, f1):
                    fitted[f - f0] += a * bk[f]
            x = spectrum[c]
            for f in range(f0, f1):
                x[f] -= fitted[f - f0]
    return amps


@njit(cache=True, nogil=True)
def remove_arrivals_each_mic(spectrum, phases, template, edges):
    """:func:`remove_arrivals` with each mic its own amplitudes (the direct path: its near field differs from mic to
    mic): ``spectrum`` (C, F), ``phases`` (C * K, F) as there -> (C, K, B), each mic's arrivals subtracted from its
    row in place. One compiled call where numpy made a (C, K, K) system per band in a dozen steps (their call
    overhead was most of the direct path's removal time)."""
    c_count = spectrum.shape[0]
    k_count = phases.shape[0] // c_count
    amps = np.empty((c_count, k_count, edges.shape[0] - 1), dtype=np.complex128)
    for c in range(c_count):
        amps[c] = remove_arrivals(spectrum[c:c + 1], phases[c * k_count:(c + 1) * k_count], template, edges)
    return amps
