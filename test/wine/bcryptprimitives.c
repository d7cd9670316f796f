/* A stand-in bcryptprimitives.dll for the Wine smoke test only: Go 1.26
 * Windows binaries need ProcessPrng, which Wine 8 (Debian bookworm) lacks.
 * It fills the buffer from RtlGenRandom (advapi32 SystemFunction036), which
 * Wine has. Never shipped: real Windows 10+ has the genuine DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
