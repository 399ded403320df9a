/* fusec_math.h: vectorizable float32 approximations of exp, log, tanh, erf, sigmoid, gelu, sin, cos,
 * expm1, log1p and softplus.
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
 * Denormal inputs and results are handled (fusec_expf scales a denormal result by 2^64, then 2^-64).
 * tanh, sigmoid, gelu and erf use fusec_exp_flushf, which returns 0 below 2^-124: they add 1 to it.
 *
 * float64 uses the C library (exp, log, tanh, erf): fusec's f64 tolerance is 1e-9, which a short
 * polynomial cannot promise, and no performance target is in f64.
 */
#ifndef FUSEC_MATH_H
#define FUSEC_MATH_H

#include <math.h>
#include <stdint.h>

/* The vector width of kernels that call these functions (fusec/codegen/c_width.py): 16 float lanes
 * where the compiler targets AVX-512, which halves the instructions of a polynomial; elsewhere the
 * compiler's own choice. Generated code writes `#pragma omp simd FUSEC_SIMD_WIDE`. */
#ifdef __AVX512F__
#define FUSEC_SIMD_WIDE simdlen(16)
#else
#define FUSEC_SIMD_WIDE
#endif

/* reinterpret the bits of a float as an int and back (defined behaviour for unions in C99) */
static inline int32_t fusec_f2i(float x) { union { float f; int32_t i; } u; u.f = x; return u.i; }
static inline float fusec_i2f(int32_t i) { union { float f; int32_t i; } u; u.i = i; return u.f; }

/* exp: x = n ln2 + r with |r| <= ln2/2, exp(x) = 2^n exp(r), as (2 exp(r)) * 2^(n-1) so that the one
 * scale factor stays a normal float up to the overflow end (n = 128). fusec_exp_flushf is exact for
 * x >= -86 and returns 0 below (a result under 2^-124, which 1 + e or e + 1 cannot see); fusec_expf
 * also gets the denormal results right. */
static inline float fusec_exp_scaledf(float xc, float *scale)
{
    /* round x/ln2 to the nearest integer by adding 1.5 * 2^23 + 126: the low mantissa bits of t
     * hold n + 126, the biased exponent of 2^(n-1), and t << 23 is that float's bit pattern */
    const float shifter = 12583038.0f;
    float t = fmaf(xc, 1.44269504088896341f, shifter);
    float n = t - shifter;
    *scale = fusec_i2f((int32_t)((uint32_t)fusec_f2i(t) << 23));
    float r = fmaf(n, -0.693145751953125f, xc);      /* ln2, high part: exact product */
    r = fmaf(n, -1.428606765330187e-06f, r);         /* ln2, low part */
    /* 2 exp(r): a degree-6 polynomial, coefficients doubled (exactly), in Horner form */
    float p = fmaf(r, 0.002786728786304593f, 0.016726350411772728f);
    p = fmaf(r, p, 0.08333293348550796f);
    p = fmaf(r, p, 0.33333152532577515f);
    p = fmaf(r, p, 1.0f);
    p = fmaf(r, p, 2.0f);
    return fmaf(r, p, 2.0f);
}

static inline float fusec_exp_flushf(float x)
{
    /* Below -86 the lanes compute exp(0) and are replaced by 0, so no lane ever computes a denormal
     * (a microcode assist of ~100 cycles per vector). Above 89, clamp so that 2^(n-1) stays finite:
     * 2 exp(r) * 2^127 is +inf. A NaN passes both tests unchanged. */
    int flush = x < -86.0f;
    float xc = x > 89.0f ? 89.0f : x;
    xc = flush ? 0.0f : xc;
    float scale;
    float q = fusec_exp_scaledf(xc, &scale);
    return flush ? 0.0f : q * scale;
}

static inline float fusec_expf(float x)
{
    /* Results between 2^-149 and 2^-124 (x in [-104, -86)) are scaled by 2^64 first and by 2^-64 in
     * the last product, which rounds once to the denormal. Below -104 the result rounds to 0: those
     * lanes compute exp(0) and select 0, since an underflowing product costs a microcode assist
     * (a causal mask's -inf made attention's softmax 10x slower). */
    int underflows = x < -104.0f;
    int tiny = x < -86.0f;
    float xc = x > 89.0f ? 89.0f : x;
    xc = underflows ? 0.0f : xc;
    float scale;
    float q = fusec_exp_scaledf(xc, &scale);
    scale = tiny ? fusec_i2f((int32_t)((uint32_t)fusec_f2i(scale) + (64u << 23))) : scale;
    float y = q * scale;
    y = tiny ? y * 5.421010862427522e-20f : y;       /* 2^-64 */
    return underflows ? 0.0f : y;
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

/* tanh: an odd polynomial near 0, where 1 - 2/(e+1) would cancel; the exp form elsewhere. Both are
 * computed for |x| and take x's sign once at the end (tanh(-0) = -0). */
static inline float fusec_tanhf(float x)
{
    float ax = fabsf(x);
    float u = x * x;
    float p = fmaf(u, 0.0022955364547669888f, -0.008346653543412685f);
    p = fmaf(u, p, 0.02176983281970024f);
    p = fmaf(u, p, -0.05395938456058502f);
    p = fmaf(u, p, 0.13333304226398468f);
    p = fmaf(u, p, -0.3333333432674408f);
    float small = fmaf(ax * u, p, ax);
    /* tanh rounds to 1 from |x| = 9.01 on, so exp(2|x|) is taken at most at 20: no overflow or
     * underflow to handle (a NaN passes the clamp unchanged) */
    float a2 = 2.0f * ax;
    a2 = a2 > 20.0f ? 20.0f : a2;
    float scale;
    float e = fusec_exp_scaledf(a2, &scale) * scale;
    float large = 1.0f - 2.0f / (e + 1.0f);
    return copysignf(ax < 0.625f ? small : large, x);
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
    float erfc = fusec_exp_flushf(-a2) * (1.0f - da2) * g;
    float large = copysignf(1.0f - erfc, x);
    large = ax >= 4.0f ? copysignf(1.0f, x) : large;
    return ax < 1.0f ? small : (x != x ? x : large);
}

static inline float fusec_sigmoidf(float x) { return 1.0f / (1.0f + fusec_exp_flushf(-x)); }

/* gelu, tanh form: 0.5 x (1 + tanh(z)) == x * sigmoid(2z), one exp and no cancellation */
static inline float fusec_gelu_tanhf(float x)
{
    /* -2z = x (c1 x^2 + c0), c0 = -2 sqrt(2/pi), c1 = 0.044715 c0: three operations instead of six */
    float m2z = x * fmaf(x * x, -0.07135481627260025f, -1.5957691216057308f);
    return x / (1.0f + fusec_exp_flushf(m2z));
}

/* gelu, exact form: 0.5 x (1 + erf(x / sqrt(2))) */
static inline float fusec_gelu_erff(float x) { return 0.5f * x * (1.0f + fusec_erff(x * 0.7071067811865476f)); }

/* ---- sin, cos, expm1, log1p, softplus ---------------------------------------------------------
 * sin, cos, expm1 and log1p compute in double and round once to float: within 1 ulp of the exact
 * value (tests/test_cmath.py measures them against float64 results rounded to float; NumPy's own
 * float32 expm1 and log1p are off by up to 3 and 2 ulps, its sin and cos by ~1):
 *   fusec_sinf, fusec_cosf  <= 1 ulp for |x| < 8.4e8 (2^29 pi/2): x = n pi/2 + r with pi/2 in four
 *                           parts (24, 24, 24 and 53 bits), so each n * part is exact for n < 2^29;
 *                           Taylor polynomials in r (|r| <= pi/4, truncation < 1e-14). Beyond
 *                           8.4e8 the reduction loses all bits: results stay in [-1, 1] but are NOT
 *                           accurate (NumPy reduces exactly there; use float64 for such arguments).
 *                           sin(+-0) = +-0, sin and cos of +-inf and NaN are NaN.
 *   fusec_expm1f            <= 1 ulp: x = n ln2 + r, expm1(x) = 2^n expm1(r) + (2^n - 1), expm1(r)
 *                           a Taylor polynomial of degree 11 (|r| <= ln2 / 2). expm1(+-0) = +-0.
 *   fusec_log1pf            <= 1 ulp: u = 1 + x in double, log u = k ln2 + 2 atanh(s) with
 *                           s = (m - 1) / (m + 1), m in [sqrt(1/2), sqrt(2)), and the rounding of
 *                           1 + x put back as (x - (u - 1)) / u. log1p(-1) = -inf, log1p(x < -1) = NaN.
 *   fusec_softplusf         <= 4 ulp: max(x, 0) + log1p(exp(-|x|)), the op table's definition
 *                           (exp rounds to float in between, in NumPy's reference and here).
 */
static inline int64_t fusec_d2i(double x) { union { double d; int64_t i; } u; u.d = x; return u.i; }
static inline double fusec_i2d(int64_t i) { union { double d; int64_t i; } u; u.i = i; return u.d; }

/* sin and cos of x = n pi/2 + r: quadrant n mod 4 picks +-sin(r) or +-cos(r) */
static inline float fusec_sincosf(float x, int want_cos)
{
    double xd = (double)x;
    const double shifter = 6755399441055744.0;       /* 1.5 * 2^52: n lands in the low mantissa bits */
    double t = xd * 0.6366197723675814 + shifter;
    double n = t - shifter;
    int32_t q = (int32_t)(fusec_d2i(t) & 3) + want_cos;
    double r = xd - n * 1.5707963705062866;           /* exact: x and n * pi/2 are within a factor 2 */
    r = r - n * -4.371138828673793e-08;
    r = r - n * -1.7151245100058819e-15;
    r = r - n * 1.0562999066987428e-23;
    double z = r * r;
    double s = 1.6059043836821613e-10;               /* sin: 1/13! ... -1/3! */
    s = s * z - 2.505210838544172e-08;
    s = s * z + 2.7557319223985893e-06;
    s = s * z - 1.984126984126984e-04;
    s = s * z + 8.333333333333333e-03;
    s = s * z - 1.6666666666666666e-01;
    s = r + r * z * s;
    double c = -1.1470745597729725e-11;              /* cos: -1/14! ... -1/2! */
    c = c * z + 2.08767569878681e-09;
    c = c * z - 2.755731922398589e-07;
    c = c * z + 2.48015873015873e-05;
    c = c * z - 1.388888888888889e-03;
    c = c * z + 4.1666666666666664e-02;
    c = c * z - 0.5;
    c = 1.0 + z * c;
    double v = (q & 1) ? c : s;
    v = (q & 2) ? -v : v;
    v = v > 1.0 ? 1.0 : v;                            /* beyond the accurate range: still in [-1, 1] */
    v = v < -1.0 ? -1.0 : v;
    return (float)v;
}

static inline float fusec_sinf(float x) { return x == 0.0f ? x : fusec_sincosf(x, 0); }
static inline float fusec_cosf(float x) { return fusec_sincosf(x, 1); }

static inline float fusec_expm1f(float x)
{
    double xd = (double)x;
    xd = xd < -104.0 ? -104.0 : xd;                   /* a NaN passes both tests unchanged */
    xd = xd > 89.0 ? 89.0 : xd;
    const double shifter = 6755399441055744.0;
    double t = xd * 1.4426950408889634 + shifter;
    double n = t - shifter;
    int64_t ni = fusec_d2i(t) - fusec_d2i(shifter);
    double r = xd - n * 6.93147180369123816490e-01;   /* ln2, high part (32 bits): exact product */
    r = r - n * 1.90821492927058770002e-10;           /* ln2, low part */
    double p = 2.505210838544172e-08;                /* 1/11! ... 1/2! */
    p = p * r + 2.755731922398589e-07;
    p = p * r + 2.7557319223985893e-06;
    p = p * r + 2.48015873015873e-05;
    p = p * r + 1.984126984126984e-04;
    p = p * r + 1.388888888888889e-03;
    p = p * r + 8.333333333333333e-03;
    p = p * r + 4.1666666666666664e-02;
    p = p * r + 1.6666666666666666e-01;
    p = p * r + 0.5;
    p = r + r * r * p;                                /* expm1(r) */
    /* 2^n; shifted as unsigned so that a NaN's garbage n is no undefined behaviour */
    double scale = fusec_i2d((int64_t)((uint64_t)(ni + 1023) << 52));
    double v = scale * p + (scale - 1.0);
    return (x != x || x == 0.0f) ? x : (float)v;
}

static inline float fusec_log1pf(float x)
{
    double xd = (double)x;
    double u = 1.0 + xd;
    int64_t bits = fusec_d2i(u);
    int64_t k = ((bits >> 52) & 0x7ff) - 1023;
    int64_t mbits = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
    int64_t big = mbits > 0x3ff6a09e667f3bcdLL;       /* mantissa > sqrt(2) */
    double m = fusec_i2d(big ? mbits - 0x0010000000000000LL : mbits);
    k += big;
    double s = (m - 1.0) / (m + 1.0);
    double z = s * s;
    double p = 1.0 / 15.0;                            /* 2 atanh(s) = 2 (s + s^3/3 + ... + s^15/15) */
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    double logm = 2.0 * (s + s * z * p);
    double v = (double)k * 0.6931471805599453 + logm + (xd - (u - 1.0)) / u;
    float y = (float)v;
    y = x == -1.0f ? -INFINITY : y;
    y = x < -1.0f ? NAN : y;
    y = x == INFINITY ? INFINITY : y;
    return (x != x || x == 0.0f) ? x : y;
}

static inline float fusec_softplusf(float x)
{
    return (x > 0.0f ? x : 0.0f) + fusec_log1pf(fusec_expf(-fabsf(x)));
}

static inline double fusec_softplus(double x) { return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))); }

/* float64: the C library (accurate to ~1 ulp; scalar calls) */
static inline double fusec_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double fusec_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static inline double fusec_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); }

/* ---- pow -----------------------------------------------------------------------------------------
 * IEEE pow, as the interpreter defines it (fusec.ir.special.float_power). gcc turns powf(x, 0.5f) into
 * sqrtf(x) when it vectorizes a loop (and not otherwise), which gives nan for x = -inf and -0 for
 * x = -0 where pow gives +inf and +0; so an exponent of 0.5 takes sqrt here on purpose, with those two
 * cases put right, and the result no longer depends on whether the loop was vectorized. */
static inline float fusec_powf(float x, float y)
{
    float half = x == -INFINITY ? INFINITY : sqrtf(x) + 0.0f;   /* -0 + 0 is +0 */
    return y == 0.5f ? half : powf(x, y);
}

static inline double fusec_pow(double x, double y)
{
    double half = x == -INFINITY ? INFINITY : sqrt(x) + 0.0;
    return y == 0.5 ? half : pow(x, y);
}

#endif /* FUSEC_MATH_H */
