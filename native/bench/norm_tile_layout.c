/* The L1 value-norm kernel's tile product, 256 x 4096 x 128 (rows x modelDim x headDim, Llama-3-8B), single-threaded
 * OpenBLAS, with W_o^h read from the row-major W_o (one 512-byte row every 16 KiB) and from a contiguous copy of
 * the same slice, between two bare 512 x 4096 x 4096 sgemm probes (2 threads, then 1). Prints GFLOP/s per round and
 * whether the two layouts gave the same bits.
 * Usage: norm_tile_layout rounds [rows-per-tile] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void openblas_set_num_threads(int);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float* rnd(size_t n, unsigned s){float*p=aligned_alloc(64,((n*4+63)/64)*64);for(size_t i=0;i<n;i++){s=s*1103515245u+12345u;p[i]=((int)(s>>9)%2001-1000)/1000.0f;}return p;}
int main(int argc,char**argv){
  int rounds=argc>1?atoi(argv[1]):5, rows=argc>2?atoi(argv[2]):256;
  const int d=128,M=4096,H=32;
  float*Wo=rnd((size_t)M*H*d,2); float*Woc=aligned_alloc(64,(size_t)M*d*4);
  for(int k=0;k<M;k++) memcpy(Woc+(size_t)k*d, Wo+(size_t)k*H*d+5*d, d*4);
  int N=4096; float*V=rnd((size_t)N*d,1); float*C=aligned_alloc(64,(size_t)rows*M*4); float*C2=aligned_alloc(64,(size_t)rows*M*4);
  float*X=rnd(512*4096,3),*W=rnd(4096*4096,4),*O=aligned_alloc(64,512*4096*4);
  for(int r=-1;r<rounds;r++){
    openblas_set_num_threads(2);
    double t0=now(); cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,512,4096,4096,1,X,4096,W,4096,0,O,4096); double tp=now()-t0;
    openblas_set_num_threads(1);
    t0=now(); for(int t=0;t<N;t+=rows) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,rows,M,d,1,V+(size_t)t*d,d,Wo+5*d,H*d,0,C,M); double ts=now()-t0;
    t0=now(); for(int t=0;t<N;t+=rows) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,rows,M,d,1,V+(size_t)t*d,d,Woc,d,0,C2,M); double tc=now()-t0;
    t0=now(); cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,512,4096,4096,1,X,4096,W,4096,0,O,4096); double tp1=now()-t0;
    double f=2.0*N*M*d;
    if(r>=0) printf("probe 2thr %.1f GFLOP/s, probe 1thr %.1f | tiles %d rows 1thr: strided W_o %.1f GFLOP/s, contiguous %.1f  same bits %s\n",
       2.0*512*4096*4096/tp/1e9, 2.0*512*4096*4096/tp1/1e9, rows, f/ts/1e9, f/tc/1e9, memcmp(C,C2,(size_t)rows*M*4)?"NO":"yes");
  }
}
