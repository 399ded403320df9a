/* fusec_math.h: vectorizable float32 approximations of exp, log, tanh, erf, sigmoid and gelu.
 *
 * Why: glibc's scalar expf/tanhf keep a loop from vectorizing (gelu ~250 ms instead of ~7 ms at
 * 4096x4096), and its vector math library reaches only 30-45% of the memory roofline. These
 * functions are branch-free (selects, integer bit operations, fmaf) and `static inline`, so gcc
 * inlines them into an `omp simd` loop and vectorizes them with AVX2.
 *
 * Accuracy against NumPy's float32 results, in ulps (max over ~10^6 points, the special values and
 * denormals; tests/test_cmath.py checks these bounds):
 *   fusec_expf      <= 2 ulp          (degree-6 polynomial after range reduction by ln 2)
 *   fusec_logf      <= 2 ulp          (fdlibm's reduction to [sqrt(1/2), sqrt(2)) and polynomial)
 *   fusec_tanhf     <= 2 ulp          (odd polynomial below 0.625, 1 - 2/(exp(2|x|)+1) above)
 *   fusec_erff      <= 2 ulp          (odd polynomial below 1, 1 - exp(-x^2) * P(1/x) above)
 *   fusec_sigmoidf  <= 4 ulp          (1 / (1 + exp(-x)); NumPy's own expf adds its rounding)
 * Special values are computed, not rejected: NaN in gives NaN out, exp(+inf) = +inf,
 * exp(-inf) = 0, log(0) = -inf, log(x < 0) = NaN, tanh(+-inf) = +-1, erf(+-inf) = +-1.
 * Denormal inputs and results are handled (exp scales by 2^n in two steps).
 *
 * float64 uses the C library (exp, log, tanh, erf): fusec's f64 tolerance is 1e-9, which a short
 * polynomial cannot promise, and no performance target is in f64.
 */
#ifndef FUSEC_MATH_H
#define FUSEC_MATH_H

#include <math.h>
#include <stdint.h>

/* reinterpret the bits of a float as an int and back (defined behaviour for unions in C99) */
static inline int32_t fusec_f2i(float x) { union { float f; int32_t i; } u; u.f = x; return u.i; }
static inline float fusec_i2f(int32_t i) { union { float f; int32_t i; } u; u.i = i; return u.f; }

/* exp: x = n ln2 + r with |r| <= ln2/2, exp(x) = 2^n * exp(r). */
static inline float fusec_expf(float x)
{
    /* keep 2^n representable in two factors; a NaN passes both tests unchanged */
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    /* round x/ln2 to the nearest integer by adding 1.5 * 2^23: n lands in the low mantissa bits */
    const float shifter = 12582912.0f;
    float t = fmaf(xc, 1.44269504088896341f, shifter);
    float n = t - shifter;
    int32_t ni = fusec_f2i(t) - fusec_f2i(shifter);
    float r = fmaf(n, -0.693145751953125f, xc);      /* ln2, high part: exact product */
    r = fmaf(n, -1.428606765330187e-06f, r);         /* ln2, low part */
    float p = fmaf(r, 0.0013933643931522965f, 0.008363175205886364f);
    p = fmaf(r, p, 0.04166646674275398f);
    p = fmaf(r, p, 0.16666576266288757f);
    p = fmaf(r, p, 0.5f);
    p = fmaf(r * r, p, r) + 1.0f;
    /* 2^n as two halves so that results near the overflow and denormal ends stay right */
    int32_t n1 = ni >> 1;
    int32_t n2 = ni - n1;
    /* shift as unsigned: for a NaN x, n is garbage and a signed shift would overflow (UB; UBSan stops) */
    float s1 = fusec_i2f((int32_t)((uint32_t)(n1 + 127) << 23));
    float s2 = fusec_i2f((int32_t)((uint32_t)(n2 + 127) << 23));
    return p * s1 * s2;
}

/* log, after fdlibm's e_logf.c: x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)). */
static inline float fusec_logf(float x)
{
    int tiny = x < 1.17549435e-38f;                  /* denormal, zero or negative */
    float xs = tiny ? x * 8388608.0f : x;            /* scale denormals by 2^23 */
    int32_t bits = fusec_f2i(xs);
    int32_t k = ((bits >> 23) & 0xff) - 127 - (tiny ? 23 : 0);
    /* mantissa in [1, 2), then moved to [sqrt(1/2), sqrt(2)) */
    int32_t mbits = (bits & 0x007fffff) | 0x3f800000;
    int big = mbits > 0x3fb504f3;                    /* mantissa > sqrt(2) */
    float m = fusec_i2f(big ? mbits - 0x00800000 : mbits);
    k += big;
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float t1 = w * fmaf(w, 0.24279078841f, 0.40000972152f);
    float t2 = z * fmaf(w, 0.28498786688f, 0.66666662693f);
    float R = t2 + t1;
    float hfsq = 0.5f * f * f;
    float dk = (float)k;
    float y = dk * 6.9313812256e-01f - ((hfsq - (s * (hfsq + R) + dk * 9.0580006145e-06f)) - f);
    /* special values, as selects so the loop stays vectorizable */
    y = x == 0.0f ? -INFINITY : y;
    y = x < 0.0f ? NAN : y;
    y = x == INFINITY ? INFINITY : y;
    return x != x ? x : y;
}

/* tanh: an odd polynomial near 0, where 1 - 2/(e+1) would cancel; the exp form elsewhere. */
static inline float fusec_tanhf(float x)
{
    float ax = fabsf(x);
    float u = x * x;
    float p = fmaf(u, 0.0022955364547669888f, -0.008346653543412685f);
    p = fmaf(u, p, 0.02176983281970024f);
    p = fmaf(u, p, -0.05395938456058502f);
    p = fmaf(u, p, 0.13333304226398468f);
    p = fmaf(u, p, -0.3333333432674408f);
    float small = copysignf(fmaf(x * u, p, x), x);   /* keeps tanh(-0) = -0 */
    float e = fusec_expf(2.0f * ax);
    float large = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return ax < 0.625f ? small : large;
}

/* erf: x * P(x^2) below 1; above, erfc(x) = exp(-x^2) * G(1/x) with G smooth on (1/4, 1]. */
static inline float fusec_erff(float x)
{
    float ax = fabsf(x);
    float u = x * x;
    float p = fmaf(u, 7.882497448008507e-05f, -0.0008018855005502701f);
    p = fmaf(u, p, 0.005189312156289816f);
    p = fmaf(u, p, -0.02685432881116867f);
    p = fmaf(u, p, 0.11283597350120544f);
    p = fmaf(u, p, -0.3761262595653534f);
    p = fmaf(u, p, 1.1283791065216064f);
    float small = x * p;
    float ac = ax < 4.0f ? ax : 4.0f;                /* beyond 4, erf rounds to 1 in float */
    float t = 1.0f / (ac > 1.0f ? ac : 1.0f);
    float g = fmaf(t, 0.026025233790278435f, -0.1534985601902008f);
    g = fmaf(t, g, 0.3745883107185364f);
    g = fmaf(t, g, -0.44898903369903564f);
    g = fmaf(t, g, 0.16222162544727325f);
    g = fmaf(t, g, 0.27309733629226685f);
    g = fmaf(t, g, -0.3913748860359192f);
    g = fmaf(t, g, 0.02404976263642311f);
    g = fmaf(t, g, 0.5613178610801697f);
    g = fmaf(t, g, 0.000145903424709104f);
    /* exp(-x^2) with the rounding error of x^2 put back: exp(-(u + du)) ~ exp(-u) (1 - du) */
    float a2 = ac * ac;
    float da2 = fmaf(ac, ac, -a2);
    float erfc = fusec_expf(-a2) * (1.0f - da2) * g;
    float large = copysignf(1.0f - erfc, x);
    large = ax >= 4.0f ? copysignf(1.0f, x) : large;
    return ax < 1.0f ? small : (x != x ? x : large);
}

static inline float fusec_sigmoidf(float x) { return 1.0f / (1.0f + fusec_expf(-x)); }

/* gelu, tanh form: 0.5 x (1 + tanh(z)) == x * sigmoid(2z), one exp and no cancellation */
static inline float fusec_gelu_tanhf(float x)
{
    float z = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + fusec_expf(-2.0f * z));
}

/* gelu, exact form: 0.5 x (1 + erf(x / sqrt(2))) */
static inline float fusec_gelu_erff(float x) { return 0.5f * x * (1.0f + fusec_erff(x * 0.7071067811865476f)); }

/* float64: the C library (accurate to ~1 ulp; scalar calls) */
static inline double fusec_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double fusec_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static inline double fusec_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); }

#endif /* FUSEC_MATH_H */
