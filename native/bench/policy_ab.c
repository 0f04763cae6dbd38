/* A/B/C driver for the policy kernels (policy_kernels.c) at Llama-3-8B's geometry (head dim 128, model dim 4096,
 * 32 query heads, a group of 4, window 32): A = the first lib with OpenBLAS's default threads, B = the second lib,
 * C = the first lib with openblas_set_num_threads(1). One warm-up round, then `rounds` rounds of A, B, C in turn;
 * prints medians, GFLOP/s, ratios and whether the outputs are bitwise equal.
 * Usage: policy_ab vn|gram|l2|wa rounds rows old.so new.so
 * Both libraries must have ABI 5 or later (kvs_policy_value_norms / kvs_policy_gram with W_o's row and head strides); W_o is
 * passed row-major, as llama2.c stores it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef int32_t (*vn_t)(const float*, int32_t, int32_t, const float*, int32_t, int64_t, int64_t, int32_t, int32_t, float*, float*, int32_t);
typedef int32_t (*gr_t)(const float*, int32_t, int64_t, int64_t, int32_t, int32_t, float*);
typedef int32_t (*l2_t)(const float*, int32_t, int32_t, const float*, int32_t, float*, float*, int32_t);
typedef int32_t (*wa_t)(const float*, int32_t, int32_t, int32_t, int32_t, int32_t, const float*, int32_t, const int64_t*, const int64_t*, float, float*, float*, float*);
typedef void (*snt_t)(int);
typedef int (*gnt_t)(void);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static float* rnd(size_t n, unsigned s){float*p=aligned_alloc(64,((n*4+63)/64)*64);for(size_t i=0;i<n;i++){s=s*1103515245u+12345u;p[i]=((int)(s>>9)%2001-1000)/1000.0f;}return p;}
int main(int argc,char**argv){
  const char* which=argc>1?argv[1]:"vn"; int rounds=argc>2?atoi(argv[2]):5; int N=argc>3?atoi(argv[3]):4096;
  if(argc<6){fprintf(stderr,"usage: policy_ab vn|gram|l2|wa rounds rows old.so new.so\n");return 2;}
  void* A=dlopen(argv[4],RTLD_NOW|RTLD_LOCAL); void* B=dlopen(argv[5],RTLD_NOW|RTLD_LOCAL);
  if(!A||!B){fprintf(stderr,"%s\n",dlerror());return 1;}
  snt_t setn=(snt_t)dlsym(A,"openblas_set_num_threads"); gnt_t getn=(gnt_t)dlsym(A,"openblas_get_num_threads");
  int deflt=getn();
  const int d=128,M=4096,H=32,g=4,w=32;
  float* V=rnd((size_t)N*d,1); float* Wo=rnd((size_t)M*H*d,2); float* Q=rnd((size_t)w*H*d,3); float* K=rnd((size_t)N*d,4);
  float* G=rnd((size_t)H*d*d,5);
  int64_t* kp=malloc(8*N); for(int i=0;i<N;i++)kp[i]=i; int64_t* qp=malloc(8*w); for(int i=0;i<w;i++)qp[i]=N-w+i;
  size_t outn=(size_t)g*N*2+ (size_t)H*d*d; float* out[3]; for(int i=0;i<3;i++){out[i]=calloc(outn,4);}
  float* scr=aligned_alloc(64,(size_t)4*1024*1024*4);
  double flops; const char* fn;
  if(!strcmp(which,"vn")){flops=2.0*N*M*d*g;fn="kvs_policy_value_norms";}
  else if(!strcmp(which,"gram")){flops=2.0*d*d*M*H;fn="kvs_policy_gram";}
  else if(!strcmp(which,"l2")){flops=2.0*N*g*d*d;fn="kvs_policy_value_l2_norms";}
  else {flops=2.0*w*N*d*g;fn="kvs_policy_window_attention";}
  void* f[3]={dlsym(A,fn),dlsym(B,fn),dlsym(A,fn)};
  double* t[3]; for(int i=0;i<3;i++)t[i]=malloc(sizeof(double)*rounds);
  for(int r=-1;r<rounds;r++) for(int m=0;m<3;m++){
    if(m==2)setn(1);
    float* o=out[m];
    double t0=now();
    if(!strcmp(which,"vn")) ((vn_t)f[m])(V,N,d,Wo,M,(int64_t)H*d,d,4,g,o,scr,256);
    else if(!strcmp(which,"gram")) ((gr_t)f[m])(Wo,M,(int64_t)H*d,d,H,d,o);
    else if(!strcmp(which,"l2")) ((l2_t)f[m])(V,N,d,G,g,o,scr,512);
    else ((wa_t)f[m])(Q,w,H,d,4,g,K,N,kp,qp,0.088f,o,o+(size_t)g*N,scr);
    double dt=now()-t0;
    if(m==2)setn(deflt);
    if(r>=0)t[m][r]=dt;
  }
  const char* nm[3]={"A base (OpenBLAS threads)","B pool + 1-thread BLAS","C base, 1 BLAS thread"};
  double med[3];
  for(int m=0;m<3;m++){qsort(t[m],rounds,sizeof(double),cmpd);med[m]=t[m][rounds/2];
    printf("%s %-26s median %.3f s  %.1f GFLOP/s  (min %.3f max %.3f)\n",which,nm[m],med[m],flops/med[m]/1e9,t[m][0],t[m][rounds-1]);}
  printf("%s B/A speed %.2fx  C/A %.2fx  B/C %.2fx  threads=%d  bitwise A==B %s A==C %s\n",which,med[0]/med[1],med[0]/med[2],med[2]/med[1],deflt,
    memcmp(out[0],out[1],outn*4)?"NO":"yes",memcmp(out[0],out[2],outn*4)?"NO":"yes");
  return 0;
}
